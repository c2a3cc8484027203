package switchboard

import (
	"fmt"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

func colleaguesAre(names ...string) func(protocol.Frame) bool {
	return func(f protocol.Frame) bool { return slices.Equal(f.Agents, names) }
}

// Agents hear which colleagues are free to take a transfer: on connect
// and when it changes, never themselves, and not one who is full or away.
func TestColleaguesFrame(t *testing.T) {
	h := startNode(t, nil)
	const p1 = "+15551120001"
	alice := h.agent("alice", 1)
	alice.Expect(protocol.TypeColleagues, colleaguesAre(), waitLong)
	h.waitAgent("alice", protocol.AgentAvailable, 0)
	bob := h.agent("bob", 1)
	bob.Expect(protocol.TypeColleagues, colleaguesAre("alice"), waitLong) // on connect
	alice.Expect(protocol.TypeColleagues, colleaguesAre("bob"), waitLong) // when bob became free
	h.waitAgent("bob", protocol.AgentAvailable, 0)

	// Away: not offered to anyone.
	bob.Send(protocol.Frame{Type: protocol.TypeAway})
	alice.Expect(protocol.TypeColleagues, colleaguesAre(), waitLong)
	// Full: alice takes the only conversation, so bob hears nobody is free.
	h.sms("SM1", p1, "hello")
	alice.Expect(protocol.TypeAssigned, isPhone(p1), waitLong)
	bob.Expect(protocol.TypeColleagues, colleaguesAre(), waitLong)
	// Back: alice hears bob is free again.
	bob.Send(protocol.Frame{Type: protocol.TypeAvailable, Capacity: 1})
	alice.Expect(protocol.TypeColleagues, colleaguesAre("bob"), waitLong)
}

// A transfer's note is stored as an internal note of the sender when the
// transfer is applied: the receiver sees it again after a reconnect (the
// assigned frame's transfer field is only in the live frame) and in the
// history. A refused transfer stores nothing.
func TestTransferNoteIsStored(t *testing.T) {
	h := startNode(t, nil)
	const p1 = "+15551120002"
	alice := h.agent("alice", 2)
	h.waitAgent("alice", protocol.AgentAvailable, 0)
	h.sms("SM1", p1, "where is my order?")
	alice.Expect(protocol.TypeAssigned, isPhone(p1), waitLong)
	alice.Send(protocol.Frame{Type: protocol.TypeTransfer, Phone: p1, To: "nobody", Note: "refused", Ref: "r1"})
	if f := alice.Expect(protocol.TypeError, nil, waitLong); f.Code != protocol.CodeUnavailable {
		t.Fatalf("transfer to an unknown agent: %+v", f)
	}
	bob := h.agent("bob", 1)
	h.waitAgent("bob", protocol.AgentAvailable, 0)
	alice.Send(protocol.Frame{Type: protocol.TypeTransfer, Phone: p1, To: "bob", Note: "wants a refund"})
	bob.Expect(protocol.TypeAssigned, isPhone(p1), waitLong)

	notes := func(list []protocol.Message) []protocol.Message {
		var out []protocol.Message
		for _, m := range list {
			if m.Direction == protocol.Note {
				out = append(out, m)
			}
		}
		return out
	}
	want := "transferred to bob: wants a refund"
	var got []protocol.Message
	sbt.WaitFor(t, waitLong, "the note in the history", func() bool {
		bob.Send(protocol.Frame{Type: protocol.TypeHistory, Phone: p1})
		got = notes(bob.Expect(protocol.TypeHistory, isPhone(p1), waitLong).List)
		return len(got) > 0
	})
	if len(got) != 1 || got[0].Text != want || got[0].Agent != "alice" {
		t.Fatalf("notes in the history: %+v, want one by alice %q", got, want)
	}
	again := h.agent("bob", 1) // bob reconnects: this connection replaces the first
	f := again.Expect(protocol.TypeAssigned, isPhone(p1), waitLong)
	if got := notes(f.List); len(got) != 1 || got[0].Text != want || got[0].Agent != "alice" {
		t.Fatalf("notes after the reconnect: %+v (assigned %+v)", got, f)
	}
	if len(h.twilio.Sent()) != 0 {
		t.Fatalf("the note reached Twilio: %+v", h.twilio.Sent())
	}
}

// The supervisor's view lists what each agent holds, and the supervisor
// reads any of those conversations.
func TestQueueViewListsHeldConversations(t *testing.T) {
	h := startNode(t, nil)
	const p1 = "+15551120003"
	alice := h.agent("alice", 1)
	bob := h.agent("bob", 1)
	bob.Send(protocol.Frame{Type: protocol.TypeAway})
	h.waitAgent("bob", protocol.AgentAway, 0)
	h.sms("SM1", p1, "my parcel is late")
	alice.Expect(protocol.TypeAssigned, isPhone(p1), waitLong)
	h.waitAgent("alice", protocol.AgentAvailable, 1)
	v := h.queueView()
	if len(v.Agents) != 2 || !slices.Equal(v.Agents[0].Conversations, []string{p1}) || v.Agents[1].Conversations == nil || len(v.Agents[1].Conversations) != 0 {
		t.Fatalf("GET /queue agents: %+v", v.Agents)
	}
	sup := sbt.DialAgent(t, h.ws, testAdmin)
	sup.Expect(protocol.TypeSupervisor, func(f protocol.Frame) bool {
		return f.View != nil && len(f.View.Agents) == 2 && slices.Equal(f.View.Agents[0].Conversations, []string{p1})
	}, waitLong)
	sup.Send(protocol.Frame{Type: protocol.TypeHistory, Phone: p1, Limit: 10})
	if f := sup.Expect(protocol.TypeHistory, nil, waitLong); len(f.List) != 1 || f.List[0].Text != "my parcel is late" {
		t.Fatalf("supervisor reads a held conversation: %+v", f)
	}
}

// A colleagues frame names at most maxColleagues free agents, the first
// by name, never the agent itself.
func TestColleaguesBounded(t *testing.T) {
	var free []string
	for i := range maxColleagues + 10 {
		free = append(free, fmt.Sprintf("agent%03d", i))
	}
	if got := colleagues(free, "").Agents; len(got) != maxColleagues || got[0] != "agent000" || got[maxColleagues-1] != free[maxColleagues-1] {
		t.Fatalf("colleagues of a stranger = %d names %q…, want the first %d", len(got), got[:2], maxColleagues)
	}
	got := colleagues(free, "agent003").Agents
	if len(got) != maxColleagues || slices.Contains(got, "agent003") || got[maxColleagues-1] != free[maxColleagues] {
		t.Fatalf("colleagues of agent003 = %d names ending %q, want %d without itself, ending %q", len(got), got[len(got)-1], maxColleagues, free[maxColleagues])
	}
	if got := colleagues(free[:3], "agent001").Agents; !slices.Equal(got, []string{"agent000", "agent002"}) {
		t.Fatalf("a small team = %q", got)
	}
}
