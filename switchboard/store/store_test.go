package store

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"go.uber.org/goleak"

	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

type messageT = protocol.Message

// goleveldb's mpoolDrain goroutine is not waited for by DB.Close; it exits
// on its own up to a second later. Every other goroutine must be gone.
var leakOpts = []goleak.Option{goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain")}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakOpts...)
}

const (
	alice = "alice"
	bob   = "bob"
	ph1   = "+15550000001"
	ph2   = "+15550000002"
	ph3   = "+15550000003"
)

func TestOpenOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"no dir", Options{}, ErrInvalid},
		{"negative batch", Options{Dir: t.TempDir(), MaxBatch: -1}, ErrInvalid},
		{"huge batch", Options{Dir: t.TempDir(), MaxBatch: maxMaxBatch + 1}, ErrInvalid},
		{"defaults", Options{Dir: t.TempDir()}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: err %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			if s.opts.MaxBatch != DefaultMaxBatch {
				t.Errorf("MaxBatch default %d, want %d", s.opts.MaxBatch, DefaultMaxBatch)
			}
			if err := s.Ready(); err != nil {
				t.Errorf("Ready: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := s.Ready(); !errors.Is(err, ErrClosed) {
				t.Errorf("Ready after Close: %v, want ErrClosed", err)
			}
		})
	}
}

func TestAppendInbound(t *testing.T) {
	s := newStore(t)
	at := t0.Add(time.Hour)
	m, dup := mustInbound(t, s, Inbound{Sid: "SM1", Phone: ph1, To: "+15559999999", Text: "hello", FromCountry: "US", Received: at})
	want := messageT{ID: "m0001", Phone: ph1, Direction: protocol.In, Text: "hello", Received: at.UnixMilli(), Status: protocol.StatusReceived, FromCountry: "US"}
	if dup || !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v dup=%v, want %+v", m, dup, want)
	}
	got, err := s.Message("m0001")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Message: %+v %v", got, err)
	}
	// Received defaults to the clock.
	m, _ = mustInbound(t, s, Inbound{Sid: "SM2", Phone: ph1, Text: "again"})
	if m.Received != t0.Add(time.Millisecond).UnixMilli() {
		t.Errorf("Received %d, want the fake clock's first tick", m.Received)
	}
	if _, err := s.Message("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Message(nope): %v, want ErrNotFound", err)
	}
}

func TestAppendValidation(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	long := string(make([]byte, protocol.MaxText+1))
	inbound := []struct {
		name string
		in   Inbound
	}{
		{"no sid", Inbound{Phone: ph1}},
		{"bad phone", Inbound{Sid: "a", Phone: "15550000001"}},
		{"phone with slash", Inbound{Sid: "a", Phone: "+1555/0001"}},
		{"text too long", Inbound{Sid: "a", Phone: ph1, Text: long}},
	}
	for _, tc := range inbound {
		t.Run("inbound/"+tc.name, func(t *testing.T) {
			if _, _, err := s.AppendInbound(ctx, tc.in); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
		})
	}
	replies := []struct {
		name string
		r    Reply
	}{
		{"no ref", Reply{Phone: ph1, Agent: alice, Text: "x"}},
		{"no agent", Reply{Phone: ph1, Ref: "r", Text: "x"}},
		{"agent with slash", Reply{Phone: ph1, Agent: "a/b", Ref: "r", Text: "x"}},
		{"empty text", Reply{Phone: ph1, Agent: alice, Ref: "r"}},
		{"bad phone", Reply{Phone: "+0", Agent: alice, Ref: "r", Text: "x"}},
	}
	for _, tc := range replies {
		t.Run("reply/"+tc.name, func(t *testing.T) {
			if _, _, err := s.AppendReply(ctx, tc.r); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
		})
	}
	if list, _ := s.Conversation(ph1); len(list) != 0 {
		t.Fatalf("invalid requests stored %v", list)
	}
}

func TestDedupe(t *testing.T) {
	type step struct {
		in      *Inbound
		reply   *Reply
		wantID  string
		wantDup bool
	}
	tests := []struct {
		name    string
		steps   []step
		wantIDs []string // conversation ph1 afterwards
	}{
		{"sid repeated", []step{
			{in: &Inbound{Sid: "SM1", Phone: ph1, Text: "a"}, wantID: "m0001"},
			{in: &Inbound{Sid: "SM1", Phone: ph1, Text: "a"}, wantID: "m0001", wantDup: true},
			{in: &Inbound{Sid: "SM2", Phone: ph1, Text: "b"}, wantID: "m0002"},
			{in: &Inbound{Sid: "SM1", Phone: ph1, Text: "changed text"}, wantID: "m0001", wantDup: true},
		}, []string{"m0001", "m0002"}},
		{"sid is global, not per phone", []step{
			{in: &Inbound{Sid: "SM1", Phone: ph1, Text: "a"}, wantID: "m0001"},
			{in: &Inbound{Sid: "SM1", Phone: ph2, Text: "a"}, wantID: "m0001", wantDup: true},
		}, []string{"m0001"}},
		{"ref repeated", []step{
			{reply: &Reply{Phone: ph1, Agent: alice, Ref: "r1", Text: "hi"}, wantID: "m0001"},
			{reply: &Reply{Phone: ph1, Agent: alice, Ref: "r1", Text: "hi"}, wantID: "m0001", wantDup: true},
			{reply: &Reply{Phone: ph1, Agent: alice, Ref: "r2", Text: "hi"}, wantID: "m0002"},
		}, []string{"m0001", "m0002"}},
		{"ref is per agent", []step{
			{reply: &Reply{Phone: ph1, Agent: alice, Ref: "r1", Text: "hi"}, wantID: "m0001"},
			{reply: &Reply{Phone: ph1, Agent: bob, Ref: "r1", Text: "hi"}, wantID: "m0002"},
			{reply: &Reply{Phone: ph1, Agent: "alice-2", Ref: "r1", Text: "hi"}, wantID: "m0003"},
			{reply: &Reply{Phone: ph1, Agent: bob, Ref: "r1", Text: "hi"}, wantID: "m0002", wantDup: true},
		}, []string{"m0001", "m0002", "m0003"}},
		{"refs with slashes do not collide", []step{
			{reply: &Reply{Phone: ph1, Agent: "a", Ref: "b/c", Text: "hi"}, wantID: "m0001"},
			{reply: &Reply{Phone: ph1, Agent: "a-b", Ref: "c", Text: "hi"}, wantID: "m0002"},
			{reply: &Reply{Phone: ph1, Agent: "a", Ref: "b/c", Text: "hi"}, wantID: "m0001", wantDup: true},
		}, []string{"m0001", "m0002"}},
		{"explicit id", []step{
			{in: &Inbound{ID: "X1", Sid: "SM1", Phone: ph1, Text: "a"}, wantID: "X1"},
			{in: &Inbound{ID: "X1", Sid: "SM1", Phone: ph1, Text: "a"}, wantID: "X1", wantDup: true},
			{reply: &Reply{ID: "X2", Phone: ph1, Agent: alice, Ref: "r", Text: "a"}, wantID: "X2"},
		}, []string{"X1", "X2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			for i, st := range tc.steps {
				var m messageT
				var dup bool
				if st.in != nil {
					m, dup = mustInbound(t, s, *st.in)
				} else {
					m, dup = mustReply(t, s, *st.reply)
				}
				if m.ID != st.wantID || dup != st.wantDup {
					t.Fatalf("step %d: id %s dup %v, want %s %v", i, m.ID, dup, st.wantID, st.wantDup)
				}
			}
			list, err := s.Conversation(ph1)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(list); !slices.Equal(got, tc.wantIDs) {
				t.Fatalf("conversation %v, want %v", got, tc.wantIDs)
			}
		})
	}
}

func TestExplicitIDConflict(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	mustInbound(t, s, Inbound{ID: "X1", Sid: "SM1", Phone: ph1})
	if _, _, err := s.AppendInbound(ctx, Inbound{ID: "X1", Sid: "SM2", Phone: ph1}); !errors.Is(err, ErrConflict) {
		t.Fatalf("inbound with used id: %v, want ErrConflict", err)
	}
	if _, _, err := s.AppendReply(ctx, Reply{ID: "X1", Phone: ph1, Agent: alice, Ref: "r", Text: "t"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("reply with used id: %v, want ErrConflict", err)
	}
	// The failed requests left nothing behind: their Sid and ref are free.
	if _, dup := mustInbound(t, s, Inbound{Sid: "SM2", Phone: ph1}); dup {
		t.Fatal("SM2 stored by the conflicting request")
	}
	if _, dup := mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: "r", Text: "t"}); dup {
		t.Fatal("ref stored by the conflicting request")
	}
	if list, _ := s.Conversation(ph1); !slices.Equal(ids(list), []string{"X1", "m0001", "m0002"}) {
		t.Fatalf("conversation %v", ids(list))
	}
}

func TestSameBatchDedupe(t *testing.T) {
	opts := testOptions(t)
	g := newGate()
	opts.beforeCommit = g.hook
	s := openStore(t, opts)
	ctx := context.Background()

	type answer struct {
		m   messageT
		dup bool
		err error
	}
	first := make(chan answer, 1)
	go func() {
		m, dup, err := s.AppendInbound(ctx, Inbound{Sid: "SM0", Phone: ph1})
		first <- answer{m, dup, err}
	}()
	if n := <-g.entered; n != 1 {
		t.Fatalf("first batch %d requests, want 1", n)
	}
	// The writer is held; queue four requests: two Sids, each twice, and
	// two replies with one ref.
	answers := make(chan answer, 6)
	for _, in := range []Inbound{{Sid: "SMa", Phone: ph1}, {Sid: "SMb", Phone: ph2}, {Sid: "SMa", Phone: ph1}, {Sid: "SMb", Phone: ph2}} {
		go func() {
			m, dup, err := s.AppendInbound(ctx, in)
			answers <- answer{m, dup, err}
		}()
	}
	for range 2 {
		go func() {
			m, dup, err := s.AppendReply(ctx, Reply{Phone: ph1, Agent: alice, Ref: "r", Text: "t"})
			answers <- answer{m, dup, err}
		}()
	}
	sbt.WaitFor(t, 2*time.Second, "6 queued requests", func() bool { return len(s.reqs) == 6 })
	g.release <- struct{}{}
	if a := <-first; a.err != nil || a.dup {
		t.Fatalf("first: %+v", a)
	}
	if n := <-g.entered; n != 6 {
		t.Fatalf("second batch %d requests, want 6", n)
	}
	g.release <- struct{}{}
	dups := 0
	byID := map[string]int{}
	for range 6 {
		a := <-answers
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.dup {
			dups++
		}
		byID[a.m.ID]++
	}
	if dups != 3 || len(byID) != 3 {
		t.Fatalf("dups %d ids %v, want 3 duplicates of 3 messages", dups, byID)
	}
	for _, phone := range []string{ph1, ph2} {
		list, _ := s.Conversation(phone)
		want := map[string]int{ph1: 3, ph2: 1}[phone]
		if len(list) != want {
			t.Errorf("%s has %d messages, want %d", phone, len(list), want)
		}
	}
}

func TestStatus(t *testing.T) {
	type step struct {
		st          protocol.Status
		pid         string
		wantChanged bool
		wantStatus  protocol.Status
		wantPending bool
	}
	tests := []struct {
		name    string
		steps   []step
		wantPID string
	}{
		{"forward", []step{
			{protocol.StatusSent, "SMx", true, protocol.StatusSent, false},
			{protocol.StatusDelivered, "", true, protocol.StatusDelivered, false},
		}, "SMx"},
		{"queued again is no change", []step{
			{protocol.StatusQueued, "", false, protocol.StatusQueued, true},
		}, ""},
		{"late sent after delivered", []step{
			{protocol.StatusSent, "", true, protocol.StatusSent, false},
			{protocol.StatusDelivered, "", true, protocol.StatusDelivered, false},
			{protocol.StatusSent, "", false, protocol.StatusDelivered, false},
		}, ""},
		{"delivered straight from queued", []step{
			{protocol.StatusDelivered, "", true, protocol.StatusDelivered, false},
			{protocol.StatusSent, "SMlate", false, protocol.StatusDelivered, false},
		}, "SMlate"},
		{"failed is terminal", []step{
			{protocol.StatusFailed, "", true, protocol.StatusFailed, false},
			{protocol.StatusDelivered, "", false, protocol.StatusFailed, false},
			{protocol.StatusSent, "", false, protocol.StatusFailed, false},
		}, ""},
		{"delivered is terminal", []step{
			{protocol.StatusSent, "SM1", true, protocol.StatusSent, false},
			{protocol.StatusDelivered, "", true, protocol.StatusDelivered, false},
			{protocol.StatusFailed, "SM2", false, protocol.StatusDelivered, false},
		}, "SM1"},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			r, _ := mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: "r", Text: "t"})
			if r.Status != protocol.StatusQueued || r.Direction != protocol.Out || r.Agent != alice {
				t.Fatalf("new reply %+v", r)
			}
			for i, st := range tc.steps {
				m, changed, err := s.SetStatus(ctx, r.ID, st.st, st.pid)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if changed != st.wantChanged || m.Status != st.wantStatus {
					t.Fatalf("step %d (%s): changed %v status %s, want %v %s", i, st.st, changed, m.Status, st.wantChanged, st.wantStatus)
				}
				got, _ := s.Message(r.ID)
				if got.Status != st.wantStatus {
					t.Fatalf("step %d: stored status %s, want %s", i, got.Status, st.wantStatus)
				}
				pending, _ := s.Pending()
				if (len(pending) == 1) != st.wantPending {
					t.Fatalf("step %d: pending %v, want pending=%v", i, ids(pending), st.wantPending)
				}
				if p, err := s.IsPending(r.ID); err != nil || p != st.wantPending {
					t.Fatalf("step %d: IsPending %v %v, want %v", i, p, err, st.wantPending)
				}
			}
			if tc.wantPID != "" {
				m, err := s.MessageByProviderID(tc.wantPID)
				if err != nil || m.ID != r.ID {
					t.Fatalf("MessageByProviderID: %+v %v", m, err)
				}
			}
			if _, err := s.MessageByProviderID("unknown"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("MessageByProviderID(unknown): %v", err)
			}
			// The conversation shows the merged status; the record was not rewritten.
			list, _ := s.Conversation(ph1)
			if len(list) != 1 || list[0].Status != tc.steps[len(tc.steps)-1].wantStatus {
				t.Fatalf("conversation %+v", list)
			}
		})
	}
}

func TestStatusErrors(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	in, _ := mustInbound(t, s, Inbound{Sid: "SM1", Phone: ph1})
	r, _ := mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: "r", Text: "t"})
	tests := []struct {
		name string
		id   string
		st   protocol.Status
		want error
	}{
		{"unknown id", "nope", protocol.StatusSent, ErrNotFound},
		{"inbound", in.ID, protocol.StatusSent, ErrInvalid},
		{"received is not a delivery status", r.ID, protocol.StatusReceived, ErrInvalid},
		{"bogus status", r.ID, "bogus", ErrInvalid},
		{"empty id", "", protocol.StatusSent, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := s.SetStatus(ctx, tc.id, tc.st, ""); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	if m, _ := s.Message(r.ID); m.Status != protocol.StatusQueued {
		t.Fatalf("status %s after refused updates", m.Status)
	}
	if p, err := s.IsPending(in.ID); err != nil || p {
		t.Fatalf("IsPending(inbound) = %v, %v", p, err)
	}
	if _, err := s.IsPending("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("IsPending(unknown): %v", err)
	}
}

func TestPending(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var want []string
	for i, p := range []string{ph1, ph2, ph1, ph3} {
		m, _ := mustReply(t, s, Reply{Phone: p, Agent: alice, Ref: string(rune('a' + i)), Text: "t"})
		want = append(want, m.ID)
		mustInbound(t, s, Inbound{Sid: "SM" + m.ID, Phone: p}) // inbound never pending
	}
	check := func(want []string) {
		t.Helper()
		list, err := s.Pending()
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(list); !slices.Equal(got, want) {
			t.Fatalf("pending %v, want %v", got, want)
		}
		for _, m := range list {
			if m.Status != protocol.StatusQueued || m.Direction != protocol.Out {
				t.Fatalf("pending message %+v", m)
			}
		}
	}
	check(want)
	if _, _, err := s.SetStatus(ctx, want[1], protocol.StatusSent, "SM-b"); err != nil {
		t.Fatal(err)
	}
	check([]string{want[0], want[2], want[3]})
	if _, _, err := s.SetStatus(ctx, want[3], protocol.StatusFailed, ""); err != nil {
		t.Fatal(err)
	}
	check([]string{want[0], want[2]})
	if _, _, err := s.SetStatus(ctx, want[0], protocol.StatusDelivered, ""); err != nil {
		t.Fatal(err)
	}
	check([]string{want[2]})
	// A repeated reply does not enter the outbox again.
	mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: "a", Text: "t"})
	check([]string{want[2]})
}

func TestHistory(t *testing.T) {
	s := newStore(t)
	var all []string
	for i := range 7 {
		var m messageT
		if i%3 == 2 {
			m, _ = mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: string(rune('a' + i)), Text: "r"})
		} else {
			m, _ = mustInbound(t, s, Inbound{Sid: string(rune('a' + i)), Phone: ph1, Text: "i"})
		}
		all = append(all, m.ID)
	}
	mustInbound(t, s, Inbound{Sid: "other", Phone: ph2}) // another conversation
	mustInbound(t, s, Inbound{Sid: "prefix", Phone: ph1 + "9"})
	tests := []struct {
		name     string
		phone    string
		before   string
		limit    int
		want     []string
		wantMore bool
		wantErr  error
	}{
		{"newest page", ph1, "", 3, all[4:], true, nil},
		{"second page", ph1, all[4], 3, all[1:4], true, nil},
		{"last page exact", ph1, all[3], 3, all[0:3], false, nil},
		{"last page short", ph1, all[1], 3, all[0:1], false, nil},
		{"before first", ph1, all[0], 3, nil, false, nil},
		{"everything", ph1, "", 7, all, false, nil},
		{"limit 0 means max", ph1, "", 0, all, false, nil},
		{"unknown conversation", "+15557777777", "", 5, nil, false, nil},
		{"unknown before", ph1, "nope", 3, nil, false, ErrNotFound},
		{"before from another conversation", ph2, all[3], 3, nil, false, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, more, err := s.History(tc.phone, tc.before, tc.limit)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if got := ids(list); !slices.Equal(got, tc.want) || more != tc.wantMore {
				t.Fatalf("got %v more=%v, want %v more=%v", got, more, tc.want, tc.wantMore)
			}
			for _, m := range list {
				if m.Phone != ph1 {
					t.Fatalf("message of %s in %s", m.Phone, ph1)
				}
			}
		})
	}
}

func TestConvState(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	state := func(phone string) ConvState {
		t.Helper()
		c, err := s.ConvState(phone)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := state(ph1); c != (ConvState{Phone: ph1}) {
		t.Fatalf("unknown conversation %+v", c)
	}
	in := func(sid, phone string) func() error {
		return func() error { _, _, err := s.AppendInbound(ctx, Inbound{Sid: sid, Phone: phone}); return err }
	}
	// assign and requeue write what the router does through PutConvState.
	assign := func(phone, agent string) func() error {
		return func() error {
			cur := state(phone)
			last := cur.LastAgent
			if agent != "" {
				last = agent
			}
			return s.PutConvState(ctx, ConvState{Phone: phone, Agent: agent, LastAgent: last})
		}
	}
	requeue := func(phone string) func() error {
		return func() error {
			cur := state(phone)
			last := cur.LastAgent
			if cur.Agent != "" {
				last = cur.Agent
			}
			return s.PutConvState(ctx, ConvState{Phone: phone, LastAgent: last, Waiting: true})
		}
	}
	steps := []struct {
		name  string
		do    func() error
		phone string
		want  ConvState
	}{
		{"first inbound waits", in("1", ph1), ph1, ConvState{Phone: ph1, Waiting: true, WaitSeq: 1}},
		{"second conversation waits later", in("2", ph2), ph2, ConvState{Phone: ph2, Waiting: true, WaitSeq: 2}},
		{"more inbound keeps the place", in("3", ph1), ph1, ConvState{Phone: ph1, Waiting: true, WaitSeq: 1}},
		{"a reply takes a global seq too", func() error {
			_, _, err := s.AppendReply(ctx, Reply{Phone: ph3, Agent: bob, Ref: "x", Text: "t"})
			return err
		}, ph3, ConvState{Phone: ph3}},
		{"assign", assign(ph1, alice), ph1, ConvState{Phone: ph1, Agent: alice, LastAgent: alice, WaitSeq: 1}},
		{"inbound while assigned", in("4", ph1), ph1, ConvState{Phone: ph1, Agent: alice, LastAgent: alice, WaitSeq: 1}},
		{"requeue keeps WaitSeq", requeue(ph1), ph1, ConvState{Phone: ph1, LastAgent: alice, Waiting: true, WaitSeq: 1}},
		{"reassign", assign(ph1, bob), ph1, ConvState{Phone: ph1, Agent: bob, LastAgent: bob, WaitSeq: 1}},
		{"release", assign(ph1, ""), ph1, ConvState{Phone: ph1, LastAgent: bob, WaitSeq: 1}},
		{"inbound after release waits anew", in("5", ph1), ph1, ConvState{Phone: ph1, LastAgent: bob, Waiting: true, WaitSeq: 4}},
		{"requeue of a never-waiting conversation with the router's seq", func() error {
			return s.PutConvState(ctx, ConvState{Phone: ph3, Waiting: true, WaitSeq: 5})
		}, ph3, ConvState{Phone: ph3, Waiting: true, WaitSeq: 5}},
		{"release of an unknown conversation", assign("+15557777777", ""), "+15557777777", ConvState{Phone: "+15557777777"}},
		{"put a router's state", func() error {
			return s.PutConvState(ctx, ConvState{Phone: ph2, Agent: bob, LastAgent: bob, WaitSeq: 10})
		}, ph2, ConvState{Phone: ph2, Agent: bob, LastAgent: bob, WaitSeq: 10}},
		{"put moves the global seq up", func() error {
			if err := assign(ph2, "")(); err != nil {
				return err
			}
			return in("6", ph2)()
		}, ph2, ConvState{Phone: ph2, LastAgent: bob, Waiting: true, WaitSeq: 11}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			if got := state(st.phone); got != st.want {
				t.Fatalf("got %+v, want %+v", got, st.want)
			}
		})
	}
	// Conversations sees every state; sorting by WaitSeq gives arrival order.
	var waiting []ConvState
	if err := s.Conversations(func(c ConvState) error {
		if c.Waiting {
			waiting = append(waiting, c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(waiting, func(a, b ConvState) int { return int(a.WaitSeq) - int(b.WaitSeq) })
	var order []string
	for _, c := range waiting {
		order = append(order, c.Phone)
	}
	if !slices.Equal(order, []string{ph1, ph3, ph2}) {
		t.Fatalf("waiting order %v", order)
	}
	stop := errors.New("stop")
	n := 0
	err := s.Conversations(func(ConvState) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Conversations with a failing fn: err %v after %d calls", err, n)
	}
	if err := s.PutConvState(ctx, ConvState{Phone: "x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutConvState(bad phone): %v", err)
	}
	if err := s.PutConvState(ctx, ConvState{Phone: ph1, LastAgent: "a b"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutConvState(bad agent): %v", err)
	}
}

func TestReopen(t *testing.T) {
	opts := testOptions(t)
	ctx := context.Background()
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := mustInbound(t, s, Inbound{Sid: "SM1", Phone: ph1, Text: "hi"})
	r, _ := mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: "r1", Text: "hello"})
	r2, _ := mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: "r2", Text: "more"})
	if _, _, err := s.SetStatus(ctx, r.ID, protocol.StatusSent, "SMout"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConvState(ctx, ConvState{Phone: ph1, Agent: alice, LastAgent: alice}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Conversation(ph1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	opts.NewID = counterIDs("n")
	s = openStore(t, opts)
	after, err := s.Conversation(ph1)
	if err != nil || !reflect.DeepEqual(before, after) {
		t.Fatalf("after reopen %+v (%v), want %+v", after, err, before)
	}
	if m, dup := mustInbound(t, s, Inbound{Sid: "SM1", Phone: ph1}); !dup || !reflect.DeepEqual(m, in) {
		t.Fatalf("Sid index lost: %+v dup=%v", m, dup)
	}
	if m, dup := mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: "r1", Text: "hello"}); !dup || m.ID != r.ID || m.Status != protocol.StatusSent {
		t.Fatalf("ref index lost: %+v dup=%v", m, dup)
	}
	if m, err := s.MessageByProviderID("SMout"); err != nil || m.ID != r.ID {
		t.Fatalf("provider index lost: %+v %v", m, err)
	}
	if p, _ := s.Pending(); !slices.Equal(ids(p), []string{r2.ID}) {
		t.Fatalf("pending after reopen %v", ids(p))
	}
	if c, _ := s.ConvState(ph1); c != (ConvState{Phone: ph1, Agent: alice, LastAgent: alice, WaitSeq: 1}) {
		t.Fatalf("state after reopen %+v", c)
	}
	// Seqs and the global counter continue where they were.
	n, _ := mustInbound(t, s, Inbound{Sid: "SM2", Phone: ph1})
	list, _ := s.Conversation(ph1)
	if got := ids(list); !slices.Equal(got, []string{in.ID, r.ID, r2.ID, n.ID}) {
		t.Fatalf("conversation after append %v", got)
	}
	if err := s.PutConvState(ctx, ConvState{Phone: ph1, LastAgent: alice}); err != nil {
		t.Fatal(err)
	}
	mustInbound(t, s, Inbound{Sid: "SM3", Phone: ph1})
	if c, _ := s.ConvState(ph1); c.WaitSeq != 4 {
		t.Fatalf("WaitSeq %d after reopen, want 4 (1 wait + 2 outbox before)", c.WaitSeq)
	}
}

func TestCommitFailure(t *testing.T) {
	opts := testOptions(t)
	failNext := make(chan error, 1)
	opts.beforeCommit = func(int) error {
		select {
		case err := <-failNext:
			return err
		default:
			return nil
		}
	}
	s := openStore(t, opts)
	ctx := context.Background()
	a, _ := mustInbound(t, s, Inbound{Sid: "SM1", Phone: ph1})
	boom := errors.New("disk on fire")
	failNext <- boom
	if _, _, err := s.AppendInbound(ctx, Inbound{Sid: "SM2", Phone: ph1}); !errors.Is(err, boom) {
		t.Fatalf("failed commit: err %v", err)
	}
	failNext <- boom
	if _, _, err := s.AppendReply(ctx, Reply{Phone: ph1, Agent: alice, Ref: "r", Text: "t"}); !errors.Is(err, boom) {
		t.Fatalf("failed commit: err %v", err)
	}
	// Nothing of the failed batches exists: the Sid and ref are new. The
	// seqs they allocated are skipped, never reused, so a failed batch
	// replayed from the journal could not overwrite a later message.
	b, dup := mustInbound(t, s, Inbound{Sid: "SM2", Phone: ph1})
	if dup {
		t.Fatal("SM2 from the failed batch is there")
	}
	r, dup := mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: "r", Text: "t"})
	if dup {
		t.Fatal("ref from the failed batch is there")
	}
	list, _ := s.Conversation(ph1)
	if got := ids(list); !slices.Equal(got, []string{a.ID, b.ID, r.ID}) {
		t.Fatalf("conversation %v", got)
	}
	seqs := []uint64{}
	_ = s.snapshot(func(snap *leveldbSnapshot) error {
		it := snap.NewIterator(utilPrefix(convPrefix(ph1)), nil)
		defer it.Release()
		for it.Next() {
			n, _ := seqOfMsgKey(it.Key())
			seqs = append(seqs, n)
		}
		return nil
	})
	if !slices.Equal(seqs, []uint64{1, 4, 5}) {
		t.Fatalf("seqs %v, want 1 4 5 (2 and 3 went to failed batches)", seqs)
	}
	if s.gseq != 3 {
		t.Fatalf("global seq %d, want 3 (one wait, a failed outbox entry, one outbox)", s.gseq)
	}
}

func TestCanceledContext(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.AppendInbound(ctx, Inbound{Sid: "SM1", Phone: ph1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if list, _ := s.Conversation(ph1); len(list) != 0 {
		t.Fatalf("canceled request stored %v", list)
	}
}

func TestCloseWhileQueued(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOpts...) }) // runs after every other cleanup
	opts := testOptions(t)
	g := newGate()
	opts.beforeCommit = g.hook
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		_, _, err := s.AppendInbound(ctx, Inbound{Sid: "SM0", Phone: ph1})
		first <- err
	}()
	<-g.entered
	const queued = 10
	errs := make(chan error, queued)
	for i := range queued {
		go func() {
			_, _, err := s.AppendInbound(ctx, Inbound{Sid: "SMq" + string(rune('a'+i)), Phone: ph2})
			errs <- err
		}()
	}
	sbt.WaitFor(t, 2*time.Second, "queued requests", func() bool { return len(s.reqs) == queued })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	sbt.WaitFor(t, 2*time.Second, "Close to start", func() bool { return s.Ready() != nil })
	g.release <- struct{}{} // let the batch in flight finish
	if err := <-first; err != nil {
		t.Fatalf("request being written when Close was called: %v", err)
	}
	for range queued {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("queued request: %v, want ErrClosed", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, _, err := s.AppendInbound(ctx, Inbound{Sid: "late", Phone: ph1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after Close: %v", err)
	}
	if _, err := s.Conversation(ph1); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	// Only the request in flight was stored.
	opts.beforeCommit = nil
	s = openStore(t, opts)
	if l1, _ := s.Conversation(ph1); len(l1) != 1 {
		t.Fatalf("%s: %d messages, want 1", ph1, len(l1))
	}
	if l2, _ := s.Conversation(ph2); len(l2) != 0 {
		t.Fatalf("%s: %d messages, want 0", ph2, len(l2))
	}
}

func TestULID(t *testing.T) {
	if got := encodeULID([16]byte{}); got != "00000000000000000000000000" {
		t.Errorf("zero: %s", got)
	}
	var ff [16]byte
	for i := range ff {
		ff[i] = 0xff
	}
	if got := encodeULID(ff); got != "7ZZZZZZZZZZZZZZZZZZZZZZZZZ" {
		t.Errorf("max: %s", got)
	}
	// 1469922850259 ms is 01ARZ3NDEK in the ULID spec's example.
	now := time.UnixMilli(1469922850259)
	g := newIDGen(func() time.Time { return now })
	prev := ""
	for range 1000 {
		id := g.next()
		if len(id) != 26 || id[:10] != "01ARZ3NDEK" {
			t.Fatalf("id %s", id)
		}
		if id <= prev {
			t.Fatalf("ids not increasing within one millisecond: %s after %s", id, prev)
		}
		prev = id
	}
	now = now.Add(time.Millisecond)
	if id := g.next(); id <= prev || id[:10] != "01ARZ3NDEM" {
		t.Fatalf("next millisecond: %s after %s", id, prev)
	}
	now = now.Add(-time.Hour) // the clock steps back: ids keep increasing
	if id := g.next(); id <= prev {
		t.Fatalf("clock step back: %s after %s", id, prev)
	}
}
