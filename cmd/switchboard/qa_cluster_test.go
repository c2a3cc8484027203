package main

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// TestClusterRestartedNodeRepliesSentOnce: a node that hosts an agent is
// killed, another node declares it dead and adopts its pending replies;
// the node comes back. A reply accepted by the restarted node afterwards
// must reach the SMS API once ("a reply from any node is sent once"), not
// once by the node and once more by the node that adopted it while it
// was dead.
func TestClusterRestartedNodeRepliesSentOnce(t *testing.T) {
	c := newClusterRun(t)
	n1, n2 := c.node("n1"), c.node("n2")
	n1.agent("alice", 5)
	n1.kill()
	sbt.WaitFor(t, 20*time.Second, "n2 declares n1 dead and adopts its replies", func() bool {
		return strings.Contains(n2.logs.String(), "node declared dead: sending its pending replies")
	})
	n1 = c.node("n1")
	alice := n1.agent("alice", 5)

	const phone = "+15557770100"
	if code := n1.smsSigned("SMrestart01", phone, "back again?"); code != 200 {
		t.Fatalf("webhook: %d", code)
	}
	alice.Expect(protocol.TypeAssigned, phoneIs(phone), wait)
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: phone, Message: "yes, back", Ref: "r-back"})
	alice.Expect(protocol.TypeAck, nil, wait)
	c.fake.WaitSent(t, 1, 10*time.Second)
	// Both nodes have applied the reply by now or within a moment; give a
	// second sender time to show itself.
	time.Sleep(3 * time.Second)
	var to []string
	for _, m := range c.fake.Sent() {
		to = append(to, m.To+": "+m.Body)
	}
	if len(to) != 1 {
		t.Fatalf("the reply reached the SMS API %d times, want 1: %q", len(to), to)
	}
}
