package store

import (
	"context"
	"testing"
	"time"
)

// TestAppendLogApplied: the local log's entry and its message are stored
// in one write; applying the entry afterwards finds the message stored by
// that same entry (fresh: it is routed, nothing is written twice); a
// repeated sid appends no entry.
func TestAppendLogApplied(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.AppendLog(ctx, "route.node.n1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	in := Inbound{ID: "m1", Sid: "SM1", Phone: "+15551230001", To: "+15550000000", Text: "hello", Received: time.UnixMilli(1_700_000_000_000)}
	item := LogItem{Inbound: &in}
	dup, err := s.AppendLogApplied(ctx, "sms.in.15551230001", []byte(`{"id":"m1"}`), item)
	if err != nil || dup {
		t.Fatalf("AppendLogApplied = %v, %v", dup, err)
	}
	if got := s.LogNext(); got != 2 {
		t.Fatalf("next offset %d, want 2", got)
	}
	list, err := s.Conversation(in.Phone)
	if err != nil || len(list) != 1 || list[0].ID != "m1" || list[0].Text != "hello" {
		t.Fatalf("conversation after the append = %+v, %v", list, err)
	}

	again := Inbound{ID: "m2", Sid: "SM1", Phone: in.Phone, To: in.To, Text: "hello", Received: in.Received}
	if dup, err := s.AppendLogApplied(ctx, "sms.in.15551230001", []byte(`{"id":"m2"}`), LogItem{Inbound: &again}); err != nil || !dup {
		t.Fatalf("repeated sid: dup = %v, err = %v, want a duplicate", dup, err)
	}
	if got := s.LogNext(); got != 2 {
		t.Fatalf("a duplicate appended an entry: next offset %d", got)
	}

	// Applying entry 1 (the message's) finds it fresh, stored by itself.
	apply := Inbound{ID: "m1", Sid: "SM1", Phone: in.Phone, To: in.To, Text: "hello", Received: in.Received, LogPos: LogPos(0, 1)}
	res, err := s.ApplyLog(WithoutSync(ctx), []LogItem{{Inbound: &apply}})
	if err != nil || res[0].Err != nil || !res[0].Fresh || res[0].Msg.ID != "m1" {
		t.Fatalf("apply of the entry = %+v, %v; want fresh m1", res, err)
	}
	if list, _ := s.Conversation(in.Phone); len(list) != 1 {
		t.Fatalf("%d messages after the apply, want 1", len(list))
	}
}
