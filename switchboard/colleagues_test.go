package switchboard

import (
	"slices"
	"testing"

	"github.com/switchboard/switchboard/switchboard/protocol"
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
