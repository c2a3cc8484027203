package store

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// TestAppendLogApplied: the local log's entry and its message are stored
// in one write; applying the entry afterwards finds the message stored by
// that same entry (fresh: it is routed, nothing is written twice) and
// returns what the append returned; a repeated sid appends no entry.
func TestAppendLogApplied(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.AppendLog(ctx, "route.node.n1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	in := Inbound{ID: "m1", Sid: "SM1", Phone: "+15551230001", To: "+15550000000", Text: "STOP", Received: time.UnixMilli(1_700_000_000_000)}
	item := LogItem{Inbound: &in}
	off, got, err := s.AppendLogApplied(ctx, "sms.in.15551230001", []byte(`{"id":"m1"}`), item)
	if err != nil || off != 1 || !got.Fresh || got.Msg.ID != "m1" || got.Msg.OptOut != "stop" {
		t.Fatalf("AppendLogApplied = %d, %+v, %v; want offset 1, fresh m1 (opted out)", off, got, err)
	}
	if got := s.LogNext(); got != 2 {
		t.Fatalf("next offset %d, want 2", got)
	}
	list, err := s.Conversation(in.Phone)
	if err != nil || len(list) != 1 || list[0].ID != "m1" || list[0].Text != "STOP" {
		t.Fatalf("conversation after the append = %+v, %v", list, err)
	}

	again := Inbound{ID: "m2", Sid: "SM1", Phone: in.Phone, To: in.To, Text: "STOP", Received: in.Received}
	if off, dup, err := s.AppendLogApplied(ctx, "sms.in.15551230001", []byte(`{"id":"m2"}`), LogItem{Inbound: &again}); err != nil || dup.Fresh || off != -1 || dup.Msg.ID != "m1" {
		t.Fatalf("repeated sid = %d, %+v, %v; want a duplicate (not fresh, offset -1, m1)", off, dup, err)
	}
	if got := s.LogNext(); got != 2 {
		t.Fatalf("a duplicate appended an entry: next offset %d", got)
	}

	// Applying entry 1 (the message's) finds it fresh, stored by itself,
	// and returns what the append did.
	apply := Inbound{ID: "m1", Sid: "SM1", Phone: in.Phone, To: in.To, Text: "STOP", Received: in.Received, LogPos: LogPos(0, 1)}
	res, err := s.ApplyLog(WithoutSync(ctx), []LogItem{{Inbound: &apply}})
	if err != nil || res[0].Err != nil || !reflect.DeepEqual(res[0], got) {
		t.Fatalf("apply of the entry = %+v, %v; want %+v", res, err, got)
	}
	if list, _ := s.Conversation(in.Phone); len(list) != 1 {
		t.Fatalf("%d messages after the apply, want 1", len(list))
	}

	// A reply and a note: the same.
	for i, r := range []Reply{
		{ID: "r1", Phone: in.Phone, Agent: "ann", Ref: "c1", Text: "hi", Sent: in.Received, Origin: "n1"},
		{ID: "r2", Phone: in.Phone, Agent: "ann", Ref: "c2", Text: "note", Sent: in.Received, Origin: "n1", Note: true},
	} {
		first := r
		off, got, err := s.AppendLogApplied(ctx, "sms.out.15551230001", []byte(`{}`), LogItem{Reply: &first})
		if err != nil || off != int64(2+i) || !got.Fresh {
			t.Fatalf("append reply %s = %d, %+v, %v", r.ID, off, got, err)
		}
		r.LogPos = LogPos(0, off)
		res, err := s.ApplyLog(WithoutSync(ctx), []LogItem{{Reply: &r}})
		if err != nil || !reflect.DeepEqual(res[0], got) {
			t.Fatalf("apply of reply %s = %+v, %v; want %+v", r.ID, res, err, got)
		}
	}
}
