package sms

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// provider is a Sender and Finder over an in-memory account: a send
// scripted to lose its answer still creates the message, as a provider
// that accepted the request before the connection broke would.
type provider struct {
	mu       sync.Mutex
	account  []Sent
	sendErrs []error // answers to the next sends; MaybeSent ones still create
	findErrs []error
	log      []string // "send", "find"
}

func (p *provider) Name() string { return "provider" }

func (p *provider) Send(ctx context.Context, m Outgoing) (Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, "send")
	var err error
	if len(p.sendErrs) > 0 {
		err, p.sendErrs = p.sendErrs[0], p.sendErrs[1:]
		if se, ok := errors.AsType[*SendError](err); !ok || !se.MaybeSent {
			return Result{}, err
		}
	}
	id := "SM" + string(rune('a'+len(p.account)))
	p.account = append([]Sent{{ProviderID: id, Status: protocol.StatusQueued}}, p.account...)
	if err != nil {
		return Result{}, err
	}
	return Result{ProviderID: id, Status: protocol.StatusQueued}, nil
}

func (p *provider) Find(ctx context.Context, m Outgoing, since time.Time) ([]Sent, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, "find")
	if len(p.findErrs) > 0 {
		err := p.findErrs[0]
		p.findErrs = p.findErrs[1:]
		return nil, err
	}
	return append([]Sent(nil), p.account...), nil
}

func TestDeliver(t *testing.T) {
	lost := &SendError{Temporary: true, Message: "no answer within 10s", MaybeSent: true}
	lostUnreadable := &SendError{StatusCode: 201, Message: "unreadable answer", MaybeSent: true}
	refused := &SendError{Temporary: true, Message: "network error"}
	e500 := &SendError{Temporary: true, StatusCode: 500}
	e403 := &SendError{StatusCode: 403, Message: "list not allowed"}
	earlier := Sent{ProviderID: "SMearlier", Status: protocol.StatusDelivered}
	b := Backoff{Initial: time.Millisecond, Max: time.Millisecond, Attempts: 4}
	tests := []struct {
		name      string
		p         *provider
		uncertain bool
		claim     func(Sent) bool
		wantLog   string
		wantID    string
		wantFound bool
		wantErr   string
	}{
		{"certain: sent without a lookup", &provider{account: []Sent{earlier}}, false, nil, "send", "SMb", false, ""},
		{"uncertain and there: taken, not sent", &provider{account: []Sent{earlier}}, true, nil, "find", "SMearlier", true, ""},
		{"uncertain, not there: sent", &provider{}, true, nil, "find send", "SMa", false, ""},
		{"uncertain, there but another's: sent", &provider{account: []Sent{earlier}}, true, func(Sent) bool { return false }, "find send", "SMb", false, ""},
		{"lookup fails for a while: retried, then sent", &provider{findErrs: []error{e500, e500}}, true, nil, "find find find send", "SMa", false, ""},
		{"lookup refused for good: sent rather than lost", &provider{findErrs: []error{e403}}, true, nil, "find send", "SMa", false, ""},
		{"answer lost but created: found, not sent again", &provider{sendErrs: []error{lost}}, false, nil, "send find", "SMa", true, ""},
		{"unreadable answer: found, not sent again", &provider{sendErrs: []error{lostUnreadable}}, false, nil, "send find", "SMa", true, ""},
		{"refused before sending: sent again without a lookup", &provider{sendErrs: []error{refused}}, false, nil, "send send", "SMa", false, ""},
		{"lost answers until the end: gives up", &provider{sendErrs: []error{lost}, findErrs: []error{e500, e500, e500}}, false, nil, "send find find find", "", false, "gave up after 4 attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			res, found, err := Deliver(context.Background(), p, Outgoing{ID: "m1", Body: "hi"}, Plan{
				Backoff: b, Uncertain: tt.uncertain, Claim: tt.claim,
				Sleep: func(context.Context, time.Duration) error { return nil },
			})
			if got := strings.Join(p.log, " "); got != tt.wantLog {
				t.Fatalf("calls %q, want %q", got, tt.wantLog)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.ProviderID != tt.wantID || found != tt.wantFound {
				t.Fatalf("result %+v found %v, want %s found %v", res, found, tt.wantID, tt.wantFound)
			}
		})
	}
}

// A sender that cannot look messages up sends an uncertain message: a
// duplicate is better than a loss.
func TestDeliverWithoutFinder(t *testing.T) {
	s := &scripted{}
	res, found, err := Deliver(context.Background(), s, Outgoing{ID: "m1"}, Plan{Backoff: DefaultBackoff, Uncertain: true})
	if err != nil || found || res.ProviderID != "P-m1" || s.calls != 1 {
		t.Fatalf("res %+v found %v err %v calls %d", res, found, err, s.calls)
	}
}

// Ready is asked before every lookup and attempt; its error stops Deliver
// before anything reaches the provider.
func TestDeliverReady(t *testing.T) {
	notHere := errors.New("another node sends it")
	p := &provider{sendErrs: []error{&SendError{Temporary: true, StatusCode: 503}}}
	calls := 0
	_, _, err := Deliver(context.Background(), p, Outgoing{ID: "m1"}, Plan{
		Backoff: Backoff{Initial: time.Millisecond, Max: time.Millisecond, Attempts: 5},
		Sleep:   func(context.Context, time.Duration) error { return nil },
		Ready: func(context.Context) error {
			calls++
			if calls == 2 {
				return notHere
			}
			return nil
		},
	})
	if !errors.Is(err, notHere) {
		t.Fatalf("err = %v, want %v", err, notHere)
	}
	if got := strings.Join(p.log, " "); got != "send" {
		t.Fatalf("calls %q, want one send before Ready refused", got)
	}
}
