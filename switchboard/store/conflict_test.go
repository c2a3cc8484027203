package store

import (
	"context"
	"errors"
	"testing"
)

// A ref reused with another phone or text is refused and stores nothing;
// the identical repeat stays idempotent, also within one group commit.
func TestRefConflict(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	first, _ := mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: "x", Text: "first"})
	for _, r := range []Reply{
		{Phone: ph2, Agent: alice, Ref: "x", Text: "first"},
		{Phone: ph1, Agent: alice, Ref: "x", Text: "second"},
	} {
		if _, _, err := s.AppendReply(ctx, r); !errors.Is(err, ErrRefConflict) {
			t.Errorf("AppendReply(%+v) = %v, want ErrRefConflict", r, err)
		}
	}
	again, dup := mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: "x", Text: "first"})
	if !dup || again.ID != first.ID {
		t.Fatalf("repeat = %+v dup %v, want %s again", again, dup, first.ID)
	}
	// Another agent's ref "x" is its own.
	if _, dup := mustReply(t, s, Reply{Phone: ph2, Agent: bob, Ref: "x", Text: "other"}); dup {
		t.Fatal("bob's ref x taken for alice's")
	}
	for _, phone := range []string{ph1, ph2} {
		list, err := s.Conversation(phone)
		if err != nil || len(list) != 1 {
			t.Fatalf("%s: %d messages (%v), want 1", phone, len(list), err)
		}
	}
	pos := LogPos(0, 7)
	if _, _, err := s.ApplyReply(ctx, Reply{ID: "L1", Phone: ph1, Agent: alice, Ref: "x", Text: "third", LogPos: pos}); !errors.Is(err, ErrRefConflict) {
		t.Fatalf("ApplyReply with a used ref = %v, want ErrRefConflict", err)
	}
}
