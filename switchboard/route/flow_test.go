package route

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func transferred(agent, phone, from, note string) Effect {
	return Effect{Kind: Assigned, Agent: agent, Phone: phone, From: from, Note: note}
}

// online connects and makes available each agent with capacity c.
func online(e *Engine, c int, agents ...string) {
	for _, a := range agents {
		e.Connect(a, at(0))
		e.Available(a, c, at(0))
	}
}

func TestTransferToAgent(t *testing.T) {
	e := New(0)
	online(e, 1, "alice", "bob")
	requireEffects(t, e.Arrive("+1001", 1, at(1)), assigned("alice", "+1001"))
	effs, err := e.Transfer("alice", "+1001", "bob", "wants a refund", at(2))
	if err != nil {
		t.Fatal(err)
	}
	requireEffects(t, effs, released("alice", "+1001", ReasonTransferred), transferred("bob", "+1001", "alice", "wants a refund"))
	if e.Owner("+1001") != "bob" || e.LoadOf("alice").Active != 0 {
		t.Fatalf("owner %q, alice %+v", e.Owner("+1001"), e.LoadOf("alice"))
	}
	// bob is now full; alice is away: neither can take one more.
	requireEffects(t, e.Arrive("+1002", 2, at(3)), assigned("alice", "+1002"))
	e.Away("alice")
	for _, to := range []string{"alice", "carol", "bob"} {
		if _, err := e.Transfer("bob", "+1001", to, "", at(4)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("transfer to %s: %v, want ErrUnavailable", to, err)
		}
	}
	if _, err := e.Transfer("alice", "+1001", "bob", "", at(4)); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("transfer of another's conversation: %v", err)
	}
	checkInvariants(t, e)
}

func TestTransferBackToTheLineKeepsItsPlace(t *testing.T) {
	e := New(0)
	online(e, 1, "alice")
	requireEffects(t, e.Arrive("+1001", 1, at(1)), assigned("alice", "+1001"))
	requireEffects(t, e.Arrive("+1002", 2, at(2)))
	requireEffects(t, e.Arrive("+1003", 3, at(3)))
	// Back to the line: alice is free again and gets the next one, not it.
	effs, err := e.Transfer("alice", "+1001", "", "", at(4))
	if err != nil {
		t.Fatal(err)
	}
	requireEffects(t, effs, released("alice", "+1001", ReasonTransferred), assigned("alice", "+1002"))
	if got := e.Waiting(); !reflect.DeepEqual(got, []string{"+1001", "+1003"}) {
		t.Fatalf("waiting = %v, want +1001 first (its original place)", got)
	}
	checkInvariants(t, e)
	// Someone else comes: it gets the oldest, the one alice gave back.
	e.Connect("bob", at(5))
	requireEffects(t, e.Available("bob", 1, at(5)), assigned("bob", "+1001"))
	// alice frees up: +1003 is not avoiding her.
	effs, _ = e.Release("alice", "+1002", at(6))
	requireEffects(t, effs, released("alice", "+1002", ReasonReleased), assigned("alice", "+1003"))
}

// Two transfers (or a transfer and an arrival) race for bob's last free
// place: whichever the log orders first wins, the other is refused or
// waits, in both orders.
func TestTransferRaces(t *testing.T) {
	setup := func() *Engine {
		e := New(0)
		online(e, 2, "alice", "carol")
		e.Connect("bob", at(0))
		e.Available("bob", 1, at(0))
		e.Away("bob")
		e.Arrive("+1001", 1, at(1)) // alice
		e.Arrive("+1002", 2, at(1)) // carol
		e.Available("bob", 1, at(2))
		return e
	}
	t.Run("two transfers", func(t *testing.T) {
		for _, first := range []string{"alice", "carol"} {
			e := setup()
			phone := map[string]string{"alice": e.Conversations("alice")[0], "carol": e.Conversations("carol")[0]}
			second := map[string]string{"alice": "carol", "carol": "alice"}[first]
			if _, err := e.Transfer(first, phone[first], "bob", "", at(3)); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Transfer(second, phone[second], "bob", "", at(3)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("second transfer: %v, want ErrUnavailable", err)
			}
			if got := e.Conversations("bob"); !reflect.DeepEqual(got, []string{phone[first]}) {
				t.Fatalf("bob holds %v", got)
			}
			checkInvariants(t, e)
		}
	})
	t.Run("arrival first", func(t *testing.T) {
		e := setup()
		requireEffects(t, e.Arrive("+1003", 3, at(3)), assigned("bob", "+1003"))
		if _, err := e.Transfer("alice", "+1001", "bob", "", at(3)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("transfer after the arrival: %v", err)
		}
		checkInvariants(t, e)
	})
	t.Run("transfer first", func(t *testing.T) {
		e := setup()
		owner := e.Owner("+1001")
		if _, err := e.Transfer(owner, "+1001", "bob", "", at(3)); err != nil {
			t.Fatal(err)
		}
		// The arrival goes to the agent the transfer freed.
		requireEffects(t, e.Arrive("+1003", 3, at(3)), assigned(owner, "+1003"))
		checkInvariants(t, e)
	})
}

// A supervisor assigns a waiting conversation, out of line order, to any
// connected agent: available or away, full or not. Only an agent that is
// not connected is refused.
func TestAssignWaiting(t *testing.T) {
	e := New(0)
	online(e, 1, "alice")
	e.Arrive("+1001", 1, at(1)) // alice
	e.Arrive("+1002", 2, at(2)) // waits
	e.Arrive("+1003", 3, at(3)) // waits
	if _, err := e.Assign("+1001", "alice", at(4)); !errors.Is(err, ErrNotWaiting) {
		t.Fatalf("assign a held conversation: %v", err)
	}
	if _, err := e.Assign("+1003", "bob", at(4)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("assign to an unknown agent: %v", err)
	}
	effs, err := e.Assign("+1003", "alice", at(4))
	if err != nil {
		t.Fatal(err)
	}
	requireEffects(t, effs, assigned("alice", "+1003"))
	if got := e.Waiting(); !reflect.DeepEqual(got, []string{"+1002"}) {
		t.Fatalf("waiting %v", got)
	}
	if l := e.LoadOf("alice"); l.Active != 2 {
		t.Fatalf("alice %+v", l)
	}
	// Releasing one leaves her at her capacity: the line does not move.
	effs, _ = e.Release("alice", "+1001", at(5))
	requireEffects(t, effs, released("alice", "+1001", ReasonReleased))
	e.Away("alice")
	if _, err := e.Assign("+1002", "alice", at(6)); err != nil {
		t.Fatalf("assign to an away agent: %v", err)
	}
	e.Arrive("+1004", 4, at(7))
	e.Disconnect("alice", e.Epoch("alice"))
	if _, err := e.Assign("+1004", "alice", at(8)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("assign to a disconnected agent: %v", err)
	}
	checkInvariants(t, e)
}

// The direct case: a free agent and a waiting conversation at once only
// happens with a conversation that avoids the agent (given back to the
// line by it), so a supervisor can overrule that.
func TestAssignOverrulesAvoid(t *testing.T) {
	e := New(0)
	online(e, 1, "alice")
	e.Arrive("+1001", 1, at(1))
	e.Transfer("alice", "+1001", "", "", at(2))
	if !e.IsWaiting("+1001") || e.LoadOf("alice").Active != 0 {
		t.Fatal("given back: it waits, alice is free")
	}
	effs, err := e.Assign("+1001", "alice", at(3))
	if err != nil {
		t.Fatal(err)
	}
	requireEffects(t, effs, assigned("alice", "+1001"))
	if e.WaitingLen() != 0 {
		t.Fatal("still in the line")
	}
	checkInvariants(t, e)
}

func TestAnswerTimeout(t *testing.T) {
	e := New(0)
	online(e, 2, "alice")
	e.Inbound("+1001", "m1", at(1))
	requireEffects(t, e.Arrive("+1001", 1, at(1)), assigned("alice", "+1001"))
	o, ok := e.OwedOf("+1001")
	if !ok || o != (Owed{Phone: "+1001", Agent: "alice", Msg: "m1", Since: at(1)}) {
		t.Fatalf("owed %+v %v", o, ok)
	}
	// A later message does not restart the clock.
	e.Inbound("+1001", "m2", at(5))
	if o2, _ := e.OwedOf("+1001"); o2 != o {
		t.Fatalf("owed after a second message %+v", o2)
	}
	// No one else is free: it stays.
	requireEffects(t, e.AnswerTimeout(o, at(100)))
	if e.Owner("+1001") != "alice" {
		t.Fatal("moved with no one free")
	}
	online(e, 2, "bob")
	requireEffects(t, e.AnswerTimeout(o, at(101)), released("alice", "+1001", ReasonTimeout), assigned("bob", "+1001"))
	// bob owes it now, from when he got it.
	if o3, _ := e.OwedOf("+1001"); o3 != (Owed{Phone: "+1001", Agent: "bob", Msg: "m1", Since: at(101)}) {
		t.Fatalf("owed after the move %+v", o3)
	}
	// The same timeout applied again (another node appended it too) changes nothing.
	requireEffects(t, e.AnswerTimeout(o, at(102)))
	// Answered: no timeout applies.
	o4, _ := e.OwedOf("+1001")
	e.Answered("+1001")
	if _, ok := e.OwedOf("+1001"); ok {
		t.Fatal("owed after the answer")
	}
	requireEffects(t, e.AnswerTimeout(o4, at(200)))
	// A message into an assigned conversation starts the clock at its time.
	e.Inbound("+1001", "m3", at(300))
	if o5, _ := e.OwedOf("+1001"); o5 != (Owed{Phone: "+1001", Agent: "bob", Msg: "m3", Since: at(300)}) {
		t.Fatalf("owed %+v", o5)
	}
	checkInvariants(t, e)
}

// Snapshotted and restored mid-way, an engine decides exactly as one that
// applied every event: the flow state (avoid, answers owed, wait starts)
// is part of what is persisted.
func TestFlowSnapshotRestoreDecidesTheSame(t *testing.T) {
	for seed := uint64(0); seed < 10; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			a := New(0)
			var b *Engine
			w := newWalk(r)
			for step := 0; step < 1500; step++ {
				if step == 700 {
					b = cloneBySnapshot(a)
				}
				op := w.next(a, step)
				ea := op(a)
				if b != nil {
					if eb := op(b); !reflect.DeepEqual(ea, eb) {
						t.Fatalf("step %d: restored engine decided %+v, the original %+v", step, eb, ea)
					}
				}
			}
			if !reflect.DeepEqual(a.SnapshotFlows(), b.SnapshotFlows()) || !reflect.DeepEqual(a.WaitingSince(), b.WaitingSince()) {
				t.Fatal("flow states differ at the end")
			}
		})
	}
}

func cloneBySnapshot(a *Engine) *Engine {
	b := New(0)
	var convs []Conversation
	for p := range a.convs {
		convs = append(convs, a.Conversation(p))
	}
	b.Restore(convs, time.Unix(0, 0))
	b.RestoreAgents(a.SnapshotAgents())
	b.RestoreFlows(a.SnapshotFlows())
	return b
}

// walk draws random events, transfers, assignments and answer timeouts
// included; an event is a function so it can be applied to two engines.
type walk struct {
	r      *rand.Rand
	seq    uint64
	epochs map[string]uint64
}

func newWalk(r *rand.Rand) *walk { return &walk{r: r, epochs: map[string]uint64{}} }

func (w *walk) next(e *Engine, step int) func(*Engine) []Effect {
	agents := []string{"a", "b", "c", "d", ""}
	r := w.r
	now := at(step)
	ag := agents[r.IntN(4)]
	to := agents[r.IntN(5)]
	phone := fmt.Sprintf("+1555%04d", r.IntN(30))
	switch r.IntN(14) {
	case 0:
		return func(e *Engine) []Effect { w.epochs[ag] = e.Connect(ag, now); return nil }
	case 1:
		c := 1 + r.IntN(3)
		return func(e *Engine) []Effect { return e.Available(ag, c, now) }
	case 2:
		return func(e *Engine) []Effect { e.Away(ag); return nil }
	case 3:
		ep := w.epochs[ag]
		return func(e *Engine) []Effect { e.Disconnect(ag, ep); return nil }
	case 4:
		ep := w.epochs[ag]
		return func(e *Engine) []Effect { return e.Expire(ag, ep, now) }
	case 5:
		return func(e *Engine) []Effect { effs, _ := e.Release(ag, phone, now); return effs }
	case 6, 7:
		return func(e *Engine) []Effect {
			effs, err := e.Transfer(e.Owner(phone), phone, to, "n", now)
			if err != nil {
				return []Effect{{Reason: err.Error()}}
			}
			return effs
		}
	case 8:
		return func(e *Engine) []Effect {
			effs, err := e.Assign(phone, to, now)
			if err != nil {
				return []Effect{{Reason: err.Error()}}
			}
			effs[0].Note = "assign" // beyond capacity allowed (TestAssignWaiting)
			return effs
		}
	case 9, 10:
		o, ok := e.OwedOf(phone)
		if !ok {
			return func(e *Engine) []Effect { return nil }
		}
		return func(e *Engine) []Effect { return e.AnswerTimeout(o, now) }
	case 11:
		return func(e *Engine) []Effect { e.Answered(phone); return nil }
	default:
		w.seq++
		seq, id := w.seq, fmt.Sprint("m", w.seq)
		return func(e *Engine) []Effect { e.Inbound(phone, id, now); return e.Arrive(phone, seq, now) }
	}
}

// Capacity and one agent per conversation hold under any interleaving of
// transfers, assignments, answer timeouts, arrivals and presence.
func TestFlowInvariantsUnderRandomEvents(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			e := New(0)
			w := newWalk(rand.New(rand.NewPCG(seed, 3)))
			moved := 0
			for step := 0; step < 2000; step++ {
				for _, ef := range w.next(e, step)(e) {
					if ef.Kind == Assigned && ef.Note != "assign" {
						if l := e.LoadOf(ef.Agent); l.Active > l.Capacity || !l.Available || !l.Online {
							t.Fatalf("step %d: assigned %s to %+v", step, ef.Phone, l)
						}
					}
					if ef.Reason == ReasonTransferred || (ef.Kind == Released && ef.Reason == ReasonTimeout) {
						moved++
					}
				}
				checkInvariants(t, e)
			}
			if moved == 0 {
				t.Fatal("no transfer or timeout took effect: the walk tests nothing")
			}
		})
	}
}
