package twilio_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms"
	"github.com/switchboard/switchboard/switchboard/sms/twilio"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/fakeapi"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
)

const (
	account = "AC0123456789abcdef0123456789abcdef"
	token   = "0123456789abcdef0123456789abcdef"
	ourNum  = "+15550001111"
)

func newFake(t *testing.T) *twiliotest.Server {
	t.Helper()
	f := twiliotest.NewServer(account, token)
	t.Cleanup(f.Close)
	return f
}

func newSender(t *testing.T, apiURL string, mod ...func(*twilio.Config)) *twilio.Sender {
	t.Helper()
	cfg := twilio.Config{AccountSID: account, AuthToken: token, From: ourNum, APIURL: apiURL}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := twilio.NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sendError(t *testing.T, err error) *sms.SendError {
	t.Helper()
	se, ok := errors.AsType[*sms.SendError](err)
	if !ok {
		t.Fatalf("err = %v (%T), want *sms.SendError", err, err)
	}
	return se
}

func noSleep(context.Context, time.Duration) error { return nil }

func TestSenderSend(t *testing.T) {
	fake := newFake(t)
	s := newSender(t, fake.URL())
	if s.Name() != "twilio" {
		t.Fatalf("Name = %q", s.Name())
	}
	before := time.Now()
	res, err := s.Send(context.Background(), sms.Outgoing{ID: "m1", To: "+15551234567", Body: "Yes, in stock 🙂", StatusCallback: "https://sms.example.com/sms/twilio/status"})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	sent := fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("fake got %d requests, want 1", len(sent))
	}
	if c := sent[0].Created; c.Before(before) || c.After(after) {
		t.Fatalf("fake recorded Created %v, want between %v and %v", c, before, after)
	}
	want := twiliotest.SentMessage{AccountSID: account, To: "+15551234567", From: ourNum, Body: "Yes, in stock 🙂",
		StatusCallback: "https://sms.example.com/sms/twilio/status", Sid: sent[0].Sid, BasicAuthOK: true, HTTPStatus: 201,
		Status: "queued", Created: sent[0].Created}
	if sent[0] != want {
		t.Fatalf("fake got %+v, want %+v", sent[0], want)
	}
	if len(res.ProviderID) != 34 || !strings.HasPrefix(res.ProviderID, "SM") || res.ProviderID != sent[0].Sid {
		t.Fatalf("ProviderID = %q, fake sid %q", res.ProviderID, sent[0].Sid)
	}
	if res.Status != protocol.StatusQueued {
		t.Fatalf("Status = %q, want queued", res.Status)
	}

	// Outgoing.From overrides the configured number; no StatusCallback is
	// sent when empty.
	if _, err := s.Send(context.Background(), sms.Outgoing{ID: "m2", To: "+15551234567", From: "+15550002222", Body: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := fake.Sent()[1]; got.From != "+15550002222" || got.StatusCallback != "" {
		t.Fatalf("second send = %+v", got)
	}
}

func TestSenderConcurrent(t *testing.T) {
	fake := newFake(t)
	s := newSender(t, fake.URL())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := s.Send(context.Background(), sms.Outgoing{ID: "c", To: "+15551234567", Body: strings.Repeat("x", i+1)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(fake.Accepted()); n != 20 {
		t.Fatalf("accepted %d, want 20", n)
	}
}

func TestSenderRetry(t *testing.T) {
	b := sms.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond, Attempts: 4}
	tests := []struct {
		name         string
		failN        int
		failStatus   int
		to           string
		wantStatuses []int // HTTP statuses the fake answered, in order
		wantErr      bool
		wantTemp     bool
		wantCode     int
	}{
		{"500 twice then success", 2, 500, "+15551234567", []int{500, 500, 201}, false, false, 0},
		{"429 then success", 1, 429, "+15551234567", []int{429, 201}, false, false, 0},
		{"503 until the last attempt", 3, 503, "+15551234567", []int{503, 503, 503, 201}, false, false, 0},
		{"500 on every attempt: gives up", 9, 500, "+15551234567", []int{500, 500, 500, 500}, true, true, 20500},
		{"400 is permanent", 1, 400, "+15551234567", []int{400}, true, false, 20400},
		{"invalid To: Twilio 21211, no retry", 0, 0, "+0123", []int{400}, true, false, 21211},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t)
			s := newSender(t, fake.URL())
			if tt.failN > 0 {
				fake.FailNext(tt.failN, tt.failStatus)
			}
			var retries []int
			res, _, err := sms.Deliver(context.Background(), s, sms.Outgoing{ID: "r1", To: tt.to, Body: "hi"}, sms.Plan{Backoff: b, Sleep: noSleep,
				OnRetry: func(attempt int, err error, _ time.Duration) { retries = append(retries, attempt) }})
			var got []int
			for _, m := range fake.Sent() {
				got = append(got, m.HTTPStatus)
			}
			if len(got) != len(tt.wantStatuses) {
				t.Fatalf("fake answered %v, want %v", got, tt.wantStatuses)
			}
			for i := range got {
				if got[i] != tt.wantStatuses[i] {
					t.Fatalf("fake answered %v, want %v", got, tt.wantStatuses)
				}
			}
			if len(retries) != len(tt.wantStatuses)-1 {
				t.Fatalf("onRetry calls %v for %d attempts", retries, len(tt.wantStatuses))
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if acc := fake.Accepted(); len(acc) != 1 || res.ProviderID != acc[0].Sid {
					t.Fatalf("result %+v, accepted %+v", res, acc)
				}
				return
			}
			se := sendError(t, err)
			if se.Temporary != tt.wantTemp || se.Code != tt.wantCode || se.StatusCode != tt.wantStatuses[len(tt.wantStatuses)-1] {
				t.Fatalf("SendError = %+v, want temporary=%v code=%d", se, tt.wantTemp, tt.wantCode)
			}
		})
	}
}

func TestSenderWrongToken(t *testing.T) {
	fake := newFake(t)
	s := newSender(t, fake.URL(), func(c *twilio.Config) { c.AuthToken = "wrongtoken" })
	_, _, err := sms.Deliver(context.Background(), s, sms.Outgoing{ID: "a", To: "+15551234567", Body: "hi"}, sms.Plan{Backoff: sms.DefaultBackoff, Sleep: noSleep})
	se := sendError(t, err)
	if se.Temporary || se.StatusCode != 401 || se.Code != 20003 {
		t.Fatalf("SendError = %+v, want permanent 401/20003", se)
	}
	if sent := fake.Sent(); len(sent) != 1 || sent[0].BasicAuthOK {
		t.Fatalf("fake saw %+v, want one request without valid auth", sent)
	}
	if strings.Contains(err.Error(), "wrongtoken") {
		t.Fatalf("error leaks the token: %v", err)
	}
}

func TestSenderNetworkErrorIsTemporary(t *testing.T) {
	fake := twiliotest.NewServer(account, token)
	url := fake.URL()
	fake.Close() // nothing listens there any more
	s := newSender(t, url)
	calls := 0
	_, _, err := sms.Deliver(context.Background(), s, sms.Outgoing{ID: "n", To: "+15551234567", Body: "hi"}, sms.Plan{
		Backoff: sms.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Attempts: 3}, Sleep: noSleep,
		OnRetry: func(int, error, time.Duration) { calls++ }})
	se := sendError(t, err)
	if !se.Temporary || se.StatusCode != 0 || !sms.IsTemporary(err) || se.MaybeSent {
		t.Fatalf("SendError = %+v, want temporary without status, not maybe sent", se)
	}
	if calls != 2 || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Fatalf("retries = %d, err = %v; want 3 attempts", calls, err)
	}
}

// stub serves a fixed handler for the CreateMessage path.
func stub(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestSenderNonJSONError(t *testing.T) {
	u := stub(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte("<html><body>\n<h1>502 Bad Gateway</h1>\n</body></html>"))
	})
	_, err := newSender(t, u).Send(context.Background(), sms.Outgoing{ID: "x", To: "+15551234567", Body: "hi"})
	se := sendError(t, err)
	if !se.Temporary || se.StatusCode != 502 || !strings.Contains(se.Message, "502 Bad Gateway") || strings.Contains(se.Message, "\n") {
		t.Fatalf("SendError = %+v", se)
	}
}

func TestSenderUnreadableSuccessIsPermanent(t *testing.T) {
	u := stub(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte("{not json"))
	})
	_, err := newSender(t, u).Send(context.Background(), sms.Outgoing{ID: "x", To: "+15551234567", Body: "hi"})
	if se := sendError(t, err); se.Temporary || se.StatusCode != 201 {
		t.Fatalf("SendError = %+v, want permanent (the SMS may have gone out)", se)
	}
}

func TestSenderTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	u := stub(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })

	t.Run("timeout is temporary", func(t *testing.T) {
		s := newSender(t, u, func(c *twilio.Config) { c.Timeout = 50 * time.Millisecond })
		start := time.Now()
		_, err := s.Send(context.Background(), sms.Outgoing{ID: "x", To: "+15551234567", Body: "hi"})
		if se := sendError(t, err); !se.Temporary || !se.MaybeSent {
			t.Fatalf("SendError = %+v, want temporary, maybe sent", se)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("took %v with a 50ms timeout", el)
		}
		// The error names the URL used (TWILIO_API_URL), not Twilio's.
		if host := strings.TrimPrefix(u, "http://"); !strings.Contains(err.Error(), "no answer from "+host) ||
			!strings.Contains(err.Error(), u+"/2010-04-01/") || strings.Contains(err.Error(), "api.twilio.com") {
			t.Fatalf("timeout error %q must name %s and not api.twilio.com", err, u)
		}
	})
	t.Run("caller cancel is permanent", func(t *testing.T) {
		s := newSender(t, u)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := s.Send(ctx, sms.Outgoing{ID: "x", To: "+15551234567", Body: "hi"})
		if se := sendError(t, err); se.Temporary || sms.IsTemporary(err) || !errors.Is(err, context.DeadlineExceeded) || !se.MaybeSent {
			t.Fatalf("SendError = %+v, want permanent with the ctx error, maybe sent", se)
		}
	})
}

func TestSenderAPIURLWithPrefix(t *testing.T) {
	fake := twiliotest.New(account, token)
	t.Cleanup(fake.Close)
	mux := http.NewServeMux()
	mux.Handle("/twilio/", http.StripPrefix("/twilio", fake.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s := newSender(t, srv.URL+"/twilio/")
	if _, err := s.Send(context.Background(), sms.Outgoing{ID: "p", To: "+15551234567", Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	if len(fake.Accepted()) != 1 {
		t.Fatalf("fake accepted %d", len(fake.Accepted()))
	}
}

func TestNewSenderConfig(t *testing.T) {
	ok := twilio.Config{AccountSID: account, AuthToken: token, From: ourNum}
	tests := []struct {
		name string
		mod  func(*twilio.Config)
		want string // substring of the error; "" = valid
	}{
		{"valid", func(*twilio.Config) {}, ""},
		{"valid with API URL", func(c *twilio.Config) { c.APIURL = "http://127.0.0.1:9/prefix" }, ""},
		{"no account", func(c *twilio.Config) { c.AccountSID = "" }, "TWILIO_ACCOUNT_SID"},
		{"odd account", func(c *twilio.Config) { c.AccountSID = "AC-1" }, "TWILIO_ACCOUNT_SID"},
		{"no token", func(c *twilio.Config) { c.AuthToken = "" }, "TWILIO_AUTH_TOKEN"},
		{"odd token", func(c *twilio.Config) { c.AuthToken = "a b" }, "TWILIO_AUTH_TOKEN"},
		{"no from", func(c *twilio.Config) { c.From = "" }, "TWILIO_FROM"},
		{"from not E.164", func(c *twilio.Config) { c.From = "5550001111" }, "TWILIO_FROM"},
		{"API URL without scheme", func(c *twilio.Config) { c.APIURL = "127.0.0.1:8080" }, "TWILIO_API_URL"},
		{"API URL with query", func(c *twilio.Config) { c.APIURL = "http://127.0.0.1:8080?x=1" }, "TWILIO_API_URL"},
		{"negative timeout", func(c *twilio.Config) { c.Timeout = -time.Second }, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			s, err := twilio.NewSender(cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewSender = %v, want error naming %s", err, tt.want)
			}
			if strings.Contains(err.Error(), token) {
				t.Fatalf("error leaks the token: %v", err)
			}
		})
	}
}

func TestRegisterWebhook(t *testing.T) {
	const hook = "https://sms.example.com/sms/twilio"
	cfg := func(u string) twilio.Config {
		return twilio.Config{AccountSID: account, AuthToken: token, From: ourNum, APIURL: u}
	}
	t.Run("sets SmsUrl and POST", func(t *testing.T) {
		fake := newFake(t)
		fake.AddNumber("+15559998888")
		n := fake.AddNumber(ourNum)
		n.SmsMethod = "GET"
		fake.SetNumber(n)
		if err := twilio.RegisterWebhook(context.Background(), cfg(fake.URL()), hook); err != nil {
			t.Fatal(err)
		}
		got, _ := fake.Number(ourNum)
		if got.SmsURL != hook || got.SmsMethod != "POST" {
			t.Fatalf("number = %+v", got)
		}
		if other, _ := fake.Number("+15559998888"); other.SmsURL != "" {
			t.Fatalf("other number changed: %+v", other)
		}
	})
	t.Run("number not found", func(t *testing.T) {
		fake := newFake(t)
		fake.AddNumber("+15559998888")
		err := twilio.RegisterWebhook(context.Background(), cfg(fake.URL()), hook)
		if !errors.Is(err, twilio.ErrNumberNotFound) || !strings.Contains(err.Error(), ourNum) {
			t.Fatalf("err = %v, want ErrNumberNotFound naming %s", err, ourNum)
		}
	})
	t.Run("API refuses", func(t *testing.T) {
		fake := newFake(t)
		fake.AddNumber(ourNum)
		c := cfg(fake.URL())
		c.AuthToken = "wrong"
		err := twilio.RegisterWebhook(context.Background(), c, hook)
		if se := sendError(t, err); se.StatusCode != 401 || !strings.Contains(err.Error(), "look up") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("SMS application attached", func(t *testing.T) {
		fake := newFake(t)
		n := fake.AddNumber(ourNum)
		n.SmsAppSid = "AP0123"
		fake.SetNumber(n)
		err := twilio.RegisterWebhook(context.Background(), cfg(fake.URL()), hook)
		if err == nil || !strings.Contains(err.Error(), "AP0123") {
			t.Fatalf("err = %v, want a refusal naming the application", err)
		}
		if got, _ := fake.Number(ourNum); got.SmsURL != "" {
			t.Fatalf("number changed: %+v", got)
		}
	})
	t.Run("bad webhook URL", func(t *testing.T) {
		if err := twilio.RegisterWebhook(context.Background(), cfg("http://127.0.0.1:9"), "/sms/twilio"); err == nil {
			t.Fatal("relative URL accepted")
		}
	})
}

// statusReceiver is a minimal status-callback endpoint built like the
// node's: validate the signature against its public URL, then parse.
type statusReceiver struct {
	mu  sync.Mutex
	got []twilio.StatusUpdate
	v   twilio.Validator
}

func (rcv *statusReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, twilio.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := rcv.v.Validate(r, r.PostForm); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	su, err := twilio.ParseStatus(r.PostForm)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rcv.mu.Lock()
	rcv.got = append(rcv.got, su)
	rcv.mu.Unlock()
}

func (rcv *statusReceiver) updates() []twilio.StatusUpdate {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return append([]twilio.StatusUpdate(nil), rcv.got...)
}

func TestStatusCallbacks(t *testing.T) {
	rcv := &statusReceiver{}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	rcv.v = twilio.Validator{AuthToken: token, PublicURL: srv.URL}
	callback := srv.URL + "/sms/twilio/status?node=n1"

	fake := newFake(t)
	s := newSender(t, fake.URL())
	res, err := s.Send(context.Background(), sms.Outgoing{ID: "s1", To: "+15551234567", Body: "hi", StatusCallback: callback})
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.SendStatus(callback, res.ProviderID, "undelivered"); err != nil {
		t.Fatal(err)
	}
	want := twilio.StatusUpdate{Sid: res.ProviderID, Status: protocol.StatusFailed, TwilioStatus: "undelivered", ErrorCode: "30003"}
	if got := rcv.updates(); len(got) != 1 || got[0] != want {
		t.Fatalf("updates = %+v, want %+v", got, want)
	}

	// A receiver with another token refuses the fake's signature.
	bad := &statusReceiver{v: twilio.Validator{AuthToken: "othertoken"}}
	badSrv := httptest.NewServer(bad)
	t.Cleanup(badSrv.Close)
	if err := fake.SendStatus(badSrv.URL+"/s", res.ProviderID, "sent"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("SendStatus to a wrong-token receiver = %v, want HTTP 403", err)
	}

	// Automatic callbacks, in order.
	fake.SetAutoStatus("sent", "delivered")
	res2, err := s.Send(context.Background(), sms.Outgoing{ID: "s2", To: "+15551234567", Body: "again", StatusCallback: callback})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rcv.updates()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("updates = %+v, errors = %v", rcv.updates(), fake.StatusErrors())
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := rcv.updates()[1:]
	if got[0].Sid != res2.ProviderID || got[0].Status != protocol.StatusSent || got[1].Status != protocol.StatusDelivered {
		t.Fatalf("auto updates = %+v", got)
	}
}

func TestFakeWaitSent(t *testing.T) {
	fake := newFake(t)
	s := newSender(t, fake.URL())
	done := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), sms.Outgoing{ID: "w", To: "+15551234567", Body: "hi"})
		done <- err
	}()
	got := fake.WaitAccepted(t, 1, 5*time.Second)
	if got[0].Body != "hi" {
		t.Fatalf("got %+v", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sent := fake.WaitSent(t, 1, time.Second); len(sent) != 1 {
		t.Fatalf("sent = %+v", sent)
	}
}

// TestSenderMaybeSent: MaybeSent is set exactly when the request was
// written and no HTTP status came back.
func TestSenderMaybeSent(t *testing.T) {
	m := sms.Outgoing{ID: "ms", To: "+15551234567", Body: "Your order shipped"}

	t.Run("Twilio created it but answered too late", func(t *testing.T) {
		fake := newFake(t)
		fake.HoldAnswers(1, 0)
		s := newSender(t, fake.URL(), func(c *twilio.Config) { c.Timeout = 300 * time.Millisecond })
		since := time.Now()
		_, err := s.Send(context.Background(), m)
		se := sendError(t, err)
		if !se.MaybeSent || !se.Temporary || se.StatusCode != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SendError = %+v, want temporary and maybe sent", se)
		}
		acc := fake.Accepted()
		if len(acc) != 1 || acc[0].Body != m.Body {
			t.Fatalf("fake accepted %+v, want the message", acc)
		}
		// The lookup the caller makes next finds it.
		got, err := s.Find(context.Background(), m, since)
		if err != nil || len(got) != 1 || got[0].ProviderID != acc[0].Sid || got[0].Status != protocol.StatusQueued {
			t.Fatalf("Find = %+v, %v; want %s", got, err, acc[0].Sid)
		}
	})
	t.Run("caller cancels after the write", func(t *testing.T) {
		fake := newFake(t)
		fake.HoldAnswers(1, 0)
		s := newSender(t, fake.URL())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			for len(fake.Accepted()) == 0 && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		_, err := s.Send(ctx, m)
		if se := sendError(t, err); !se.MaybeSent || se.Temporary || !errors.Is(err, context.Canceled) {
			t.Fatalf("SendError = %+v, want permanent and maybe sent", se)
		}
	})
	t.Run("connection closed after the request was read", func(t *testing.T) {
		var got atomic.Bool
		u := stub(t, func(w http.ResponseWriter, r *http.Request) {
			if b, err := io.ReadAll(r.Body); err == nil && strings.Contains(string(b), "shipped") {
				got.Store(true)
			}
			panic(http.ErrAbortHandler) // close the connection, no answer
		})
		_, err := newSender(t, u).Send(context.Background(), m)
		if se := sendError(t, err); !se.MaybeSent || !se.Temporary || se.StatusCode != 0 || !got.Load() {
			t.Fatalf("SendError = %+v (server read the request: %v), want temporary and maybe sent", se, got.Load())
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = newSender(t, "http://"+addr).Send(context.Background(), m)
		if se := sendError(t, err); se.MaybeSent || !se.Temporary || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("SendError = %+v, want temporary, not maybe sent", se)
		}
	})
	t.Run("an HTTP answer is not maybe", func(t *testing.T) {
		fake := newFake(t)
		fake.FailNext(1, 503)
		_, err := newSender(t, fake.URL()).Send(context.Background(), m)
		if se := sendError(t, err); se.MaybeSent || !se.Temporary || se.StatusCode != 503 {
			t.Fatalf("SendError = %+v, want temporary 503, not maybe sent", se)
		}
		u := stub(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte("{not json"))
		})
		_, err = newSender(t, u).Send(context.Background(), m)
		if se := sendError(t, err); se.MaybeSent || se.StatusCode != 201 {
			t.Fatalf("SendError = %+v, want 201 unreadable, not maybe sent", se)
		}
	})
	t.Run("refused before any request", func(t *testing.T) {
		_, err := newSender(t, "http://127.0.0.1:9").Send(context.Background(), sms.Outgoing{ID: "x", Body: "no To"})
		if se := sendError(t, err); se.MaybeSent {
			t.Fatalf("SendError = %+v, want not maybe sent", se)
		}
	})
}

// TestSendsReuseConnections: sends in parallel (the node runs many send
// workers) keep their connections to the API instead of dialing, and
// against Twilio shaking hands over TLS, again for most sends.
func TestSendsReuseConnections(t *testing.T) {
	fake := fakeapi.New(account, token)
	defer fake.Close()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(fake.Handler())
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	s := newSender(t, srv.URL)
	const parallel, rounds = 16, 5
	for range rounds {
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				if _, err := s.Send(context.Background(), sms.Outgoing{To: "+15551234567", Body: "hi"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	// One connection per parallel send, and now and then one more: a send
	// can start before the connection its predecessor used is back in the
	// pool. Without reuse it is about a connection per send.
	if got := conns.Load(); got > 2*parallel {
		t.Fatalf("%d connections for %d rounds of %d parallel sends, want them reused (at most %d)", got, rounds, parallel, 2*parallel)
	}
}
