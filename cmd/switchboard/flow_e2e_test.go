package main

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// queue reads the node's GET /queue.
func (p *proc) queue() protocol.QueueView {
	p.t.Helper()
	var v protocol.QueueView
	if code := sbt.GetJSON(p.t, p.base+"/queue", admin, &v); code != http.StatusOK {
		p.t.Fatalf("GET %s/queue: %d", p.base, code)
	}
	return v
}

// waitAgent waits until the node's GET /queue shows agent in state with load.
func (p *proc) waitAgent(agent, state string, load int) {
	p.t.Helper()
	sbt.WaitFor(p.t, wait, agent+" "+state+" on "+p.base, func() bool {
		for _, a := range p.queue().Agents {
			if a.Name == agent && a.State == state && a.Load == load {
				return true
			}
		}
		return false
	})
}

func released(reason string) func(protocol.Frame) bool {
	return func(f protocol.Frame) bool { return f.Reason == reason }
}

// TestFlowEndToEnd runs the real binary: a transfer with its note, the
// answer timeout after a kill -9 and restart (the answer owed is in the
// log and the checkpoint), the supervisor's view and assignment.
func TestFlowEndToEnd(t *testing.T) {
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	port, dir := sbt.FreePort(t), t.TempDir()
	p := start(t, port, dir, fake.URL(), "SWITCHBOARD_ANSWER_TIMEOUT=2s", "SWITCHBOARD_GRACE=30s")
	const p1, p2 = "+15552220001", "+15552220002"
	alice := p.agent("alice", 1)
	p.waitAgent("alice", protocol.AgentAvailable, 0)
	p.sms("SMf1", p1, "my parcel is lost")
	alice.Expect(protocol.TypeAssigned, phoneIs(p1), wait)
	bob := p.agent("bob", 1)
	p.waitAgent("bob", protocol.AgentAvailable, 0)
	bob.Send(protocol.Frame{Type: protocol.TypeAway}) // so the timeout cannot move it before the transfer
	p.waitAgent("bob", protocol.AgentAway, 0)
	alice.Send(protocol.Frame{Type: protocol.TypeTransfer, Phone: p1, To: "bob", Ref: "t1"})
	if f := alice.Expect(protocol.TypeError, nil, wait); f.Code != protocol.CodeUnavailable || f.Ref != "t1" {
		t.Fatalf("transfer to an away agent: %+v", f)
	}
	bob.Send(protocol.Frame{Type: protocol.TypeAvailable, Capacity: 1})
	p.waitAgent("bob", protocol.AgentAvailable, 0)
	alice.Send(protocol.Frame{Type: protocol.TypeTransfer, Phone: p1, To: "bob", Note: "lost in Denver, ask for the tracking number"})
	f := bob.Expect(protocol.TypeAssigned, phoneIs(p1), wait)
	if f.Transfer == nil || f.Transfer.From != "alice" || !strings.Contains(f.Transfer.Note, "Denver") || len(f.List) == 0 || f.List[0].Text != "my parcel is lost" {
		t.Fatalf("bob's assigned %+v, transfer %+v", f, f.Transfer)
	}
	alice.Expect(protocol.TypeReleased, released("transferred"), wait)
	alice.Send(protocol.Frame{Type: protocol.TypeAway}) // bob owes the answer; nobody else may take it yet
	p.waitAgent("alice", protocol.AgentAway, 0)

	// kill -9 and restart: bob still owes the answer after it.
	p.kill()
	p = start(t, port, dir, fake.URL(), "SWITCHBOARD_ANSWER_TIMEOUT=2s", "SWITCHBOARD_GRACE=30s")
	bob = p.agent("bob", 1)
	bob.Expect(protocol.TypeAssigned, phoneIs(p1), wait)
	bob.Send(protocol.Frame{Type: protocol.TypeAway})
	p.waitAgent("bob", protocol.AgentAway, 1)
	alice = p.agent("alice", 1)
	// bob leaves the customer unanswered: it moves to alice, once.
	alice.Expect(protocol.TypeAssigned, phoneIs(p1), 3*wait)
	bob.Expect(protocol.TypeReleased, released("timeout"), wait)
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: p1, Message: "Looking into it now", Ref: "a1"})
	alice.Expect(protocol.TypeAck, nil, wait)

	// The supervisor: bob is away and alice full, so p2 waits.
	p.sms("SMf2", p2, "hello?")
	sbt.WaitFor(t, wait, p2+" waiting", func() bool {
		v := p.queue()
		return len(v.Waiting) == 1 && v.Waiting[0].Phone == p2 && v.Waiting[0].Position == 1
	})
	v := p.queue()
	want := []protocol.QueueAgent{{Name: "alice", State: "available", Capacity: 1, Load: 1, Node: "e2e", Conversations: []string{p1}}, {Name: "bob", State: "away", Capacity: 1, Load: 0, Node: "e2e", Conversations: []string{}}}
	if !reflect.DeepEqual(v.Agents, want) {
		t.Fatalf("agents %+v, want %+v", v.Agents, want)
	}
	sup := sbt.DialAgent(t, p.ws, admin)
	sup.Expect(protocol.TypeSupervisor, func(f protocol.Frame) bool { return len(f.View.Waiting) == 1 }, wait)
	sup.Send(protocol.Frame{Type: protocol.TypeAssign, Phone: p2, To: "bob"})
	bob.Expect(protocol.TypeAssigned, phoneIs(p2), wait)
	p.waitAgent("bob", protocol.AgentAway, 1)
	if n := strings.Count(p.logs.String(), "answer timeout: conversation moved"); n != 1 {
		t.Fatalf("%d answer timeouts took effect, want 1", n)
	}
}

// TestClusterFlow runs two nodes on the real broker: a transfer from an
// agent on n1 to one on n2, an answer timeout that both nodes' timers
// append and that takes effect once, the queue view equal on both nodes,
// and a supervisor on n2 assigning to an agent on n1.
func TestClusterFlow(t *testing.T) {
	c := newClusterRun(t)
	timeout := "SWITCHBOARD_ANSWER_TIMEOUT=2s"
	n1 := start(t, sbt.FreePort(t), t.TempDir(), c.fake.URL(), "SWITCHBOARD_AMQP_URL="+c.amqp, "SWITCHBOARD_AMQP_EXCHANGE="+c.exchange,
		"SWITCHBOARD_NODE=n1", "SWITCHBOARD_PUBLIC_URL=https://sms.example.test", timeout)
	n2 := start(t, sbt.FreePort(t), t.TempDir(), c.fake.URL(), "SWITCHBOARD_AMQP_URL="+c.amqp, "SWITCHBOARD_AMQP_EXCHANGE="+c.exchange,
		"SWITCHBOARD_NODE=n2", "SWITCHBOARD_PUBLIC_URL=https://sms.example.test", timeout)
	const p1, p2 = "+15553330001", "+15553330002"
	alice := n1.agent("alice", 1)
	n2.waitAgent("alice", protocol.AgentAvailable, 0)
	if code := n2.smsSigned("SMc1", p1, "where is my refund?"); code != 200 {
		t.Fatalf("webhook: %d", code)
	}
	alice.Expect(protocol.TypeAssigned, phoneIs(p1), wait)
	bob := n2.agent("bob", 1)
	n1.waitAgent("bob", protocol.AgentAvailable, 0)

	// n1 → n2.
	alice.Send(protocol.Frame{Type: protocol.TypeTransfer, Phone: p1, To: "bob", Note: "refund approved"})
	f := bob.Expect(protocol.TypeAssigned, phoneIs(p1), wait)
	if f.Transfer == nil || *f.Transfer != (protocol.Transfer{From: "alice", Note: "refund approved"}) || len(f.List) != 1 {
		t.Fatalf("bob's assigned %+v, transfer %+v", f, f.Transfer)
	}
	alice.Expect(protocol.TypeReleased, released("transferred"), wait)

	// bob does not answer: both nodes' timers append the timeout, it
	// moves to alice once, and bob goes away so it cannot come back.
	alice.Expect(protocol.TypeAssigned, phoneIs(p1), 3*wait)
	bob.Expect(protocol.TypeReleased, released("timeout"), wait)
	bob.Send(protocol.Frame{Type: protocol.TypeAway})
	n1.waitAgent("bob", protocol.AgentAway, 0)
	// Both nodes' timers fire again (every timeout while it is owed):
	// with nobody else free, nothing moves.
	alice.ExpectNone(protocol.TypeReleased, 5*time.Second)
	for _, n := range []*proc{n1, n2} {
		if k := strings.Count(n.logs.String(), "answer timeout: conversation moved"); k != 1 {
			t.Fatalf("%s applied %d moving answer timeouts, want 1", n.base, k)
		}
	}
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: p1, Message: "Refund sent", Ref: "a1"})
	alice.Expect(protocol.TypeAck, nil, wait)

	// The queue view, equal on both nodes.
	if code := n1.smsSigned("SMc2", p2, "hello?"); code != 200 {
		t.Fatalf("webhook: %d", code)
	}
	strip := func(v protocol.QueueView) protocol.QueueView {
		for i := range v.Waiting {
			v.Waiting[i].WaitingMs = 0 // each node reads its own clock when asked
		}
		return v
	}
	want := protocol.QueueView{
		Waiting: []protocol.QueueWaiter{{Phone: p2, Position: 1}},
		Agents:  []protocol.QueueAgent{{Name: "alice", State: "available", Capacity: 1, Load: 1, Node: "n1", Conversations: []string{p1}}, {Name: "bob", State: "away", Capacity: 1, Load: 0, Node: "n2", Conversations: []string{}}},
	}
	sbt.WaitFor(t, wait, "the same queue view on both nodes", func() bool {
		return reflect.DeepEqual(strip(n1.queue()), want) && reflect.DeepEqual(strip(n2.queue()), want)
	})
	a, b := n1.queue(), n2.queue()
	if d := a.Waiting[0].WaitingMs - b.Waiting[0].WaitingMs; d > 5000 || d < -5000 {
		t.Fatalf("waitingMs %d on n1, %d on n2: not measured from the same log time", a.Waiting[0].WaitingMs, b.Waiting[0].WaitingMs)
	}

	// A supervisor on n2 gives p2 to alice on n1 (beyond her capacity).
	sup := sbt.DialAgent(t, n2.ws, admin)
	sup.Expect(protocol.TypeSupervisor, nil, wait)
	sup.Send(protocol.Frame{Type: protocol.TypeAssign, Phone: p2, To: "alice"})
	alice.Expect(protocol.TypeAssigned, phoneIs(p2), wait)
	n2.waitAgent("alice", protocol.AgentAvailable, 2)
}
