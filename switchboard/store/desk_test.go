package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// applyOne stores one log item and returns its result.
func applyOne(t *testing.T, s *Store, it LogItem) LogResult {
	t.Helper()
	res, err := s.ApplyLog(context.Background(), []LogItem{it})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

// A note is a message of its conversation, deduped by ref like a reply,
// never in the outbox and without a delivery status.
func TestNoteIsNotAnSMS(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	note := Reply{ID: "N1", Phone: ph1, Agent: alice, Ref: "n", Text: "call back tomorrow", LogPos: LogPos(0, 1), Note: true}
	r := applyOne(t, s, LogItem{Reply: &note})
	if r.Err != nil || !r.Fresh || r.Msg.Direction != protocol.Note || r.Msg.Status != protocol.StatusReceived {
		t.Fatalf("note = %+v", r)
	}
	again := note
	again.ID, again.LogPos = "N2", LogPos(0, 2)
	if r := applyOne(t, s, LogItem{Reply: &again}); r.Err != nil || r.Fresh || r.Msg.ID != "N1" {
		t.Fatalf("same ref again = %+v", r)
	}
	if p, err := s.Pending(); err != nil || len(p) != 0 {
		t.Fatalf("outbox = %+v %v", p, err)
	}
	if _, _, err := s.SetStatus(ctx, "N1", protocol.StatusSent, "SM1"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetStatus on a note = %v, want ErrInvalid", err)
	}
	list, err := s.Conversation(ph1)
	if err != nil || len(list) != 1 || list[0].Direction != protocol.Note || list[0].Agent != alice {
		t.Fatalf("conversation = %+v %v", list, err)
	}
	if m, err := s.MessageByRef(alice, "n"); err != nil || m.ID != "N1" {
		t.Fatalf("by ref = %+v %v", m, err)
	}
}

func TestContactsApplied(t *testing.T) {
	s := newStore(t)
	put := func(c ContactPut) LogResult { return applyOne(t, s, LogItem{Contact: &c}) }
	if r := put(ContactPut{Phone: ph1, Contact: protocol.Contact{Name: "  Maya Lopez ", Notes: "VIP"}}); r.Err != nil || !r.Fresh {
		t.Fatalf("put = %+v", r)
	}
	if r := put(ContactPut{Phone: ph1, Contact: protocol.Contact{Name: "Maya Lopez", Notes: "VIP"}}); r.Err != nil || r.Fresh {
		t.Fatalf("same again = %+v, want not fresh", r)
	}
	put(ContactPut{Phone: ph1, Contact: protocol.Contact{Name: "Maya"}, KeepNotes: true})
	if c, ok, err := s.Contact(ph1); err != nil || !ok || c != (protocol.Contact{Name: "Maya", Notes: "VIP"}) {
		t.Fatalf("after a name-only change = %+v %v %v", c, ok, err)
	}
	for _, bad := range []ContactPut{
		{Phone: "555", Contact: protocol.Contact{Name: "x"}},
		{Phone: ph1, Contact: protocol.Contact{Name: "a\x00b"}},
		{Phone: ph1, Contact: protocol.Contact{Notes: string(make([]byte, protocol.MaxContactNotes+1))}},
	} {
		if r := put(bad); !errors.Is(r.Err, ErrInvalid) {
			t.Errorf("put %+v = %v, want ErrInvalid", bad.Phone, r.Err)
		}
	}
	if c, _, _ := s.Contact(ph1); c.Name != "Maya" {
		t.Fatalf("a refused put changed the contact: %+v", c)
	}
	if r := put(ContactPut{Phone: ph1}); r.Err != nil || !r.Fresh {
		t.Fatalf("clear = %+v", r)
	}
	if _, ok, err := s.Contact(ph1); ok || err != nil {
		t.Fatalf("cleared contact still there (%v)", err)
	}
}

func TestCannedApplied(t *testing.T) {
	s := newStore(t)
	put := func(c CannedPut) LogResult { return applyOne(t, s, LogItem{Canned: &c}) }
	put(CannedPut{Name: "thanks", Text: "Thanks!"})
	put(CannedPut{Name: "bye", Text: "Bye {first_name}"})
	if r := put(CannedPut{Name: "bye", Text: "Bye {first_name}"}); r.Fresh {
		t.Fatal("the same text again is fresh")
	}
	for _, bad := range []CannedPut{{Name: "Bye", Text: "x"}, {Name: "", Text: "x"}, {Name: "x", Text: " "}, {Name: "a/b", Delete: true}} {
		if r := put(bad); !errors.Is(r.Err, ErrInvalid) {
			t.Errorf("put %+v = %v, want ErrInvalid", bad, r.Err)
		}
	}
	list, err := s.CannedReplies()
	if err != nil || len(list) != 2 || list[0] != (protocol.CannedReply{Name: "bye", Text: "Bye {first_name}"}) || list[1].Name != "thanks" {
		t.Fatalf("list = %+v %v", list, err)
	}
	if r := put(CannedPut{Name: "bye", Delete: true}); !r.Fresh {
		t.Fatal("delete not fresh")
	}
	if r := put(CannedPut{Name: "bye", Delete: true}); r.Fresh {
		t.Fatal("deleting a deleted reply is fresh")
	}
	if list, _ := s.CannedReplies(); len(list) != 1 {
		t.Fatalf("after delete = %+v", list)
	}
}

// The canned replies' limit is decided where they are applied, in log
// order: the reply past it is refused (ErrFull), in its own batch or in
// one with others; changing or deleting an existing one always works.
func TestCannedLimitApplied(t *testing.T) {
	s := newStore(t)
	for i := range protocol.MaxCanned - 1 {
		if r := applyOne(t, s, LogItem{Canned: &CannedPut{Name: fmt.Sprintf("r%d", i), Text: "x"}}); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	// One batch: the first new name fills the last place, the second is refused.
	res, err := s.ApplyLog(context.Background(), []LogItem{
		{Canned: &CannedPut{Name: "last", Text: "x"}},
		{Canned: &CannedPut{Name: "over", Text: "x"}},
		{Canned: &CannedPut{Name: "r0", Text: "changed"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || !errors.Is(res[1].Err, ErrFull) || res[2].Err != nil || !res[2].Fresh {
		t.Fatalf("results = %+v, want the second refused with ErrFull", res)
	}
	if r := applyOne(t, s, LogItem{Canned: &CannedPut{Name: "over", Text: "x"}}); !errors.Is(r.Err, ErrFull) {
		t.Fatalf("a new reply at the limit = %+v, want ErrFull", r)
	}
	// A delete and a new name in one batch: the delete makes room.
	res, err = s.ApplyLog(context.Background(), []LogItem{
		{Canned: &CannedPut{Name: "r1", Delete: true}},
		{Canned: &CannedPut{Name: "over", Text: "x"}},
	})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("delete then add = %+v %v", res, err)
	}
	if list, _ := s.CannedReplies(); len(list) != protocol.MaxCanned {
		t.Fatalf("%d canned replies, want %d", len(list), protocol.MaxCanned)
	}
}
