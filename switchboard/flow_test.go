package switchboard

import (
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// queueView reads GET /queue.
func (h *harness) queueView() protocol.QueueView {
	h.t.Helper()
	var v protocol.QueueView
	if code := sbt.GetJSON(h.t, h.base+"/queue", testAdmin, &v); code != http.StatusOK {
		h.t.Fatalf("GET /queue: %d", code)
	}
	return v
}

// waitAgent waits until GET /queue shows agent in state with load.
func (h *harness) waitAgent(agent, state string, load int) {
	h.t.Helper()
	sbt.WaitFor(h.t, waitLong, agent+" "+state, func() bool {
		for _, a := range h.queueView().Agents {
			if a.Name == agent && a.State == state && a.Load == load {
				return true
			}
		}
		return false
	})
}

func isPhone(p string) func(protocol.Frame) bool {
	return func(f protocol.Frame) bool { return f.Phone == p }
}

func TestTransferAndSupervisor(t *testing.T) {
	h := startNode(t, nil)
	const p1, p2 = "+15551110001", "+15551110002"
	alice := h.agent("alice", 1)
	h.waitAgent("alice", protocol.AgentAvailable, 0)
	h.sms("SM1", p1, "where is my order?")
	alice.Expect(protocol.TypeAssigned, isPhone(p1), waitLong)
	bob := h.agent("bob", 1)
	h.waitAgent("bob", protocol.AgentAvailable, 0)

	// alice → bob, with a note: bob gets the history and the note.
	alice.Send(protocol.Frame{Type: protocol.TypeTransfer, Phone: p1, To: "bob", Note: "wants a refund"})
	f := bob.Expect(protocol.TypeAssigned, isPhone(p1), waitLong)
	if f.Transfer == nil || *f.Transfer != (protocol.Transfer{From: "alice", Note: "wants a refund"}) || len(f.List) != 1 || f.List[0].Text != "where is my order?" {
		t.Fatalf("bob's assigned: %+v transfer %+v", f, f.Transfer)
	}
	if f := alice.Expect(protocol.TypeReleased, isPhone(p1), waitLong); f.Reason != "transferred" {
		t.Fatalf("alice released: %+v", f)
	}
	// No longer hers.
	alice.Send(protocol.Frame{Type: protocol.TypeTransfer, Phone: p1, To: "bob", Ref: "r1"})
	if f := alice.Expect(protocol.TypeError, nil, waitLong); f.Code != protocol.CodeNotAssigned || f.Ref != "r1" {
		t.Fatalf("transfer of another's: %+v", f)
	}
	// bob is full: decided when applied, alice hears unavailable.
	h.sms("SM2", p2, "hello?")
	alice.Expect(protocol.TypeAssigned, isPhone(p2), waitLong)
	alice.Send(protocol.Frame{Type: protocol.TypeTransfer, Phone: p2, To: "bob", Ref: "r2"})
	if f := alice.Expect(protocol.TypeError, nil, waitLong); f.Code != protocol.CodeUnavailable || f.Ref != "r2" {
		t.Fatalf("transfer to a full agent: %+v", f)
	}
	// Back to the line: alice is full and bob gave it back, so it waits.
	bob.Send(protocol.Frame{Type: protocol.TypeTransfer, Phone: p1, To: ""})
	if f := bob.Expect(protocol.TypeReleased, isPhone(p1), waitLong); f.Reason != "transferred" {
		t.Fatalf("bob released: %+v", f)
	}
	sbt.WaitFor(t, waitLong, p1+" waiting", func() bool {
		v := h.queueView()
		return len(v.Waiting) == 1 && v.Waiting[0].Phone == p1 && v.Waiting[0].Position == 1
	})

	// Only a supervisor assigns.
	bob.Send(protocol.Frame{Type: protocol.TypeAssign, Phone: p1, To: "bob"})
	if f := bob.Expect(protocol.TypeError, nil, waitLong); f.Code != protocol.CodeForbidden {
		t.Fatalf("agent's assign: %+v", f)
	}
	sup := sbt.DialAgent(t, h.ws, testAdmin)
	v := sup.Expect(protocol.TypeSupervisor, nil, waitLong).View
	if v == nil || len(v.Waiting) != 1 || v.Waiting[0].Phone != p1 || len(v.Agents) != 2 || v.Agents[0].Name != "alice" || v.Agents[0].Load != 1 || v.Agents[0].Node != "test" {
		t.Fatalf("supervisor view: %+v", v)
	}
	sup.Send(protocol.Frame{Type: protocol.TypeAvailable})
	if f := sup.Expect(protocol.TypeError, nil, waitLong); f.Code != protocol.CodeForbidden {
		t.Fatalf("supervisor's available: %+v", f)
	}
	sup.Send(protocol.Frame{Type: protocol.TypeHistory, Phone: p2, Limit: 10})
	if f := sup.Expect(protocol.TypeHistory, nil, waitLong); len(f.List) != 1 || f.List[0].Text != "hello?" {
		t.Fatalf("supervisor reads any conversation: %+v", f)
	}
	sup.Send(protocol.Frame{Type: protocol.TypeAssign, Phone: p1, To: "carol", Ref: "s1"})
	if f := sup.Expect(protocol.TypeError, nil, waitLong); f.Code != protocol.CodeUnavailable || f.Ref != "s1" {
		t.Fatalf("assign to nobody: %+v", f)
	}
	sup.Send(protocol.Frame{Type: protocol.TypeAssign, Phone: p1, To: "bob"})
	bob.Expect(protocol.TypeAssigned, isPhone(p1), waitLong)
	sup.Expect(protocol.TypeSupervisor, func(f protocol.Frame) bool { return len(f.View.Waiting) == 0 }, waitLong)
	// The supervisor is no agent: it never shows among them.
	for _, a := range h.queueView().Agents {
		if a.Name == supervisorName {
			t.Fatal("the supervisor is listed as an agent")
		}
	}
	if code := sbt.GetJSON(t, h.base+"/queue", "wrong", &v); code != http.StatusUnauthorized {
		t.Fatalf("GET /queue without the admin token: %d", code)
	}
}

func TestAnswerTimeoutMovesOnce(t *testing.T) {
	h := startNode(t, func(o *Options, _ *Config) { o.AnswerTimeout = time.Second })
	const p1 = "+15551120001"
	alice := h.agent("alice", 2)
	h.waitAgent("alice", protocol.AgentAvailable, 0)
	h.sms("SM1", p1, "anyone there?")
	alice.Expect(protocol.TypeAssigned, isPhone(p1), waitLong)
	// No one else is free: it stays with alice (the timer fires again
	// every timeout) until bob comes, then moves to him.
	bob := h.agent("bob", 2)
	if f := alice.Expect(protocol.TypeReleased, isPhone(p1), waitLong); f.Reason != "timeout" {
		t.Fatalf("alice released: %+v", f)
	}
	alice.Send(protocol.Frame{Type: protocol.TypeAway}) // so it cannot move back
	bob.Expect(protocol.TypeAssigned, isPhone(p1), waitLong)
	// bob answers: nothing moves any more.
	bob.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: p1, Message: "here!", Ref: "b1"})
	bob.Expect(protocol.TypeAck, nil, waitLong)
	bob.ExpectNone(protocol.TypeReleased, 2*time.Second)
	alice.ExpectNone(protocol.TypeAssigned, 10*time.Millisecond)
	h.waitAgent("bob", protocol.AgentAvailable, 1)
}
