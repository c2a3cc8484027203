package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

func TestApplyInboundFreshness(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	in := Inbound{ID: "01A", Sid: "SM1", Phone: "+15550001111", Text: "hi", LogPos: 10}
	tests := []struct {
		name      string
		mutate    func(in Inbound) Inbound
		wantFresh bool
		wantID    string
	}{
		{"first entry", func(in Inbound) Inbound { return in }, true, "01A"},
		{"same entry replayed", func(in Inbound) Inbound { return in }, true, "01A"},
		{"republished entry later in the log", func(in Inbound) Inbound { in.LogPos = 12; return in }, false, "01A"},
		{"twilio retry through another node", func(in Inbound) Inbound { in.ID = "01B"; in.LogPos = 13; return in }, false, "01A"},
		// The broker lost the log; this node adopted the new one (generation 1).
		{"first entry in a replaced log", func(in Inbound) Inbound { in.ID = "01C"; in.LogPos = LogPos(1, 3); return in }, true, "01A"},
		{"that entry replayed", func(in Inbound) Inbound { in.ID = "01C"; in.LogPos = LogPos(1, 3); return in }, true, "01A"},
		{"a later entry in the replaced log", func(in Inbound) Inbound { in.LogPos = LogPos(1, 7); return in }, false, "01A"},
		{"an entry of the old log again", func(in Inbound) Inbound { return in }, false, "01A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, fresh, err := s.ApplyInbound(ctx, tt.mutate(in))
			if err != nil {
				t.Fatal(err)
			}
			if fresh != tt.wantFresh || m.ID != tt.wantID {
				t.Fatalf("fresh=%v id=%s, want %v %s", fresh, m.ID, tt.wantFresh, tt.wantID)
			}
		})
	}
	if list, _ := s.Conversation(in.Phone); len(list) != 1 {
		t.Fatalf("stored %d messages", len(list))
	}
	// Cluster mode leaves routing state to the router.
	if st, _ := s.ConvState(in.Phone); st.Waiting {
		t.Fatalf("ApplyInbound marked the conversation waiting: %+v", st)
	}
	if m, err := s.MessageBySid("SM1"); err != nil || m.ID != "01A" {
		t.Fatalf("MessageBySid = %+v, %v", m, err)
	}
	for sid, want := range map[string]bool{"SM1": true, "SM2": false} {
		if ok, err := s.HasSid(sid); err != nil || ok != want {
			t.Fatalf("HasSid(%s) = %v, %v; want %v", sid, ok, err, want)
		}
	}
	if _, _, err := s.ApplyInbound(ctx, Inbound{Sid: "SM2", Phone: in.Phone, Text: "x"}); err == nil {
		t.Fatal("ApplyInbound without LogPos and ID succeeded")
	}
}

func TestApplyReplyAndOrigin(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	r := Reply{ID: "01R", Phone: "+15550002222", Agent: "alice", Ref: "r1", Text: "hello", LogPos: 5, Origin: "n2"}
	if _, fresh, err := s.ApplyReply(ctx, r); err != nil || !fresh {
		t.Fatalf("first apply: fresh=%v err=%v", fresh, err)
	}
	if _, fresh, _ := s.ApplyReply(ctx, r); !fresh {
		t.Fatal("replay of the same entry is not fresh")
	}
	r2 := r
	r2.LogPos = 9
	if _, fresh, _ := s.ApplyReply(ctx, r2); fresh {
		t.Fatal("a republished entry is fresh")
	}
	// A reply is never fresh again in a replaced log: fresh replies are
	// sent, and this one may have been.
	r2.LogPos = LogPos(1, 0)
	if _, fresh, _ := s.ApplyReply(ctx, r2); fresh {
		t.Fatal("a reply of an older log is fresh in a replaced log")
	}
	p, err := s.PendingReplies()
	if err != nil || len(p) != 1 || p[0].ID != "01R" || p[0].Origin != "n2" || p[0].Status != protocol.StatusQueued {
		t.Fatalf("pending = %+v, %v", p, err)
	}
	// The provider took it ("queued" with an id): it leaves the outbox.
	if _, _, err := s.SetStatus(ctx, "01R", protocol.StatusQueued, "SMprov"); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.PendingReplies(); len(p) != 0 {
		t.Fatalf("still pending after the provider took it: %+v", p)
	}
	if ok, _ := s.IsPending("01R"); ok {
		t.Fatal("IsPending after the provider took it")
	}
}

func TestJournalAndCheckpoint(t *testing.T) {
	opts := testOptions(t)
	s := openStore(t, opts)
	ctx := context.Background()
	at := time.Unix(100, 0).UTC()
	for _, id := range []string{"02", "01", "03"} {
		if err := s.PutJournal(ctx, JournalEntry{ID: id, Key: "sms.in.1555", Body: []byte(`{"id":"` + id + `"}`), At: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteJournal(ctx, "02"); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.Journal(func(e JournalEntry) error { got = append(got, e.ID+":"+string(e.Body)); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{`01:{"id":"01"}`, `03:{"id":"03"}`}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("journal = %v", got)
	}
	if b, err := s.LoadCheckpoint(); err != nil || b != nil {
		t.Fatalf("empty checkpoint = %q, %v", b, err)
	}
	convs := []ConvState{{Phone: "+15550003333", Agent: "bob", LastAgent: "bob"}, {Phone: "+15550004444", Waiting: true, WaitSeq: 42}}
	if err := s.SaveCheckpoint(ctx, convs, []byte(`{"offset":7}`)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, opts)
	if b, _ := s.LoadCheckpoint(); !bytes.Equal(b, []byte(`{"offset":7}`)) {
		t.Fatalf("checkpoint after reopen = %q", b)
	}
	if st, _ := s.ConvState("+15550004444"); !st.Waiting || st.WaitSeq != 42 {
		t.Fatalf("conv state = %+v", st)
	}
	n := 0
	s.Journal(func(JournalEntry) error { n++; return nil })
	if n != 2 {
		t.Fatalf("journal after reopen has %d entries", n)
	}

	// A replaced log: routing starts over, messages and the journal stay.
	if _, _, err := s.ApplyInbound(ctx, Inbound{ID: "01M", Sid: "SMkeep", Phone: "+15550003333", Text: "kept", LogPos: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.ResetRouting(ctx, []byte(`{"offset":-1}`)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, opts)
	if b, _ := s.LoadCheckpoint(); !bytes.Equal(b, []byte(`{"offset":-1}`)) {
		t.Fatalf("checkpoint after reset = %q", b)
	}
	var left []ConvState
	s.Conversations(func(c ConvState) error { left = append(left, c); return nil })
	if len(left) != 0 {
		t.Fatalf("routing state after reset = %+v", left)
	}
	if list, _ := s.Conversation("+15550003333"); len(list) != 1 || list[0].Text != "kept" {
		t.Fatalf("messages after reset = %+v", list)
	}
	n = 0
	s.Journal(func(JournalEntry) error { n++; return nil })
	if n != 2 {
		t.Fatalf("journal after reset has %d entries", n)
	}
}

func TestWithoutSyncStillStores(t *testing.T) {
	opts := testOptions(t)
	s := openStore(t, opts)
	ctx := WithoutSync(context.Background())
	if _, _, err := s.ApplyInbound(ctx, Inbound{ID: "01L", Sid: "SMlazy", Phone: "+15550005555", Text: "lazy", LogPos: 1}); err != nil {
		t.Fatal(err)
	}
	// A synced write after it makes it durable too; a clean reopen sees both.
	if err := s.SaveCheckpoint(context.Background(), nil, []byte(`{"offset":0}`)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, opts)
	if m, err := s.MessageBySid("SMlazy"); err != nil || m.Text != "lazy" {
		t.Fatalf("after reopen: %+v %v", m, err)
	}
}

func TestApplyLogBatch(t *testing.T) {
	s := newStore(t)
	ctx := WithoutSync(context.Background())
	items := []LogItem{
		{Inbound: &Inbound{ID: "01I", Sid: "SMb1", Phone: "+15550006666", Text: "first", LogPos: 1}},
		{Inbound: &Inbound{ID: "01J", Sid: "SMb1", Phone: "+15550006666", Text: "first", LogPos: 2}}, // a retry through another node
		{Reply: &Reply{ID: "01K", Phone: "+15550006666", Agent: "ann", Ref: "r", Text: "hi", LogPos: 3, Origin: "n1"}},
		{Status: &LogStatus{ID: "01K", Status: protocol.StatusSent, ProviderID: "SMp"}},
		{Status: &LogStatus{ID: "01K", Status: protocol.StatusQueued}}, // backwards: not fresh
		{Status: &LogStatus{ID: "nope", Status: protocol.StatusSent}},  // unknown
		{Inbound: &Inbound{ID: "01L", Sid: "SMb2", Phone: "bad", Text: "x", LogPos: 7}},
	}
	res, err := s.ApplyLog(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	check := func(i int, fresh bool, errIs error) {
		t.Helper()
		if res[i].Fresh != fresh || (errIs == nil) != (res[i].Err == nil) || (errIs != nil && !errors.Is(res[i].Err, errIs)) {
			t.Fatalf("item %d: fresh=%v err=%v, want fresh=%v err=%v", i, res[i].Fresh, res[i].Err, fresh, errIs)
		}
	}
	check(0, true, nil)
	check(1, false, nil)
	check(2, true, nil)
	check(3, true, nil)
	check(4, false, nil)
	check(5, false, ErrNotFound)
	check(6, false, ErrInvalid)
	if list, _ := s.Conversation("+15550006666"); len(list) != 2 || list[1].Status != protocol.StatusSent {
		t.Fatalf("conversation = %+v", list)
	}
	// Replaying the same run (a restart from an older checkpoint) routes the same entries again.
	res, _ = s.ApplyLog(ctx, items[:3])
	if !res[0].Fresh || res[1].Fresh || !res[2].Fresh {
		t.Fatalf("replay freshness = %v %v %v", res[0].Fresh, res[1].Fresh, res[2].Fresh)
	}
}
