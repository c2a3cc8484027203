package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

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
	c, n1, n2, _, _ := aliceOnN1(t)
	n1.kill()
	sbt.WaitFor(t, 20*time.Second, "n2 declares n1 dead and adopts its replies", func() bool {
		return strings.Contains(n2.logs.String(), "node declared dead: sending its pending replies")
	})
	n1 = c.node("n1")
	alice := n1.agent("alice", 5)

	const phone = "+15557770100"
	textReaches(t, n1, alice, "SMrestart01", phone, "back again?")
	replies(t, alice, phone, "yes, back", "r-back")
	sentOnce(t, c)
}

// aliceOnN1 starts nodes n1 and n2 on a fresh exchange and signs alice in
// on n1, and waits until the cluster knows where she is (else n2 may never
// know that n1 hosted anyone).
// It also returns the tap on her presence events.
func aliceOnN1(t *testing.T) (c *clusterRun, n1, n2 *proc, alice *sbt.Agent, presence <-chan amqp.Delivery) {
	t.Helper()
	c = newClusterRun(t)
	n1, n2 = c.node("n1"), c.node("n2")
	presence = bindTap(t, c, "agent.presence.alice")
	alice = n1.agent("alice", 5)
	announced(t, presence, "connected")
	return c, n1, n2, alice, presence
}

// textReaches posts a signed webhook from phone to node via and waits
// until alice is assigned the conversation.
func textReaches(t *testing.T, via *proc, alice *sbt.Agent, sid, phone, text string) {
	t.Helper()
	if code := via.smsSigned(sid, phone, text); code != 200 {
		t.Fatalf("webhook %s: %d", sid, code)
	}
	alice.Expect(protocol.TypeAssigned, phoneIs(phone), wait)
}

// replies has alice answer phone and waits for the node's ack.
func replies(t *testing.T, alice *sbt.Agent, phone, text, ref string) {
	t.Helper()
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: phone, Message: text, Ref: ref})
	alice.Expect(protocol.TypeAck, nil, wait)
}

// sentOnce checks that one message reached the SMS API, and that no second
// one follows: both nodes have applied the reply by the first send or
// within a moment, so a second sender would show itself within seconds.
func sentOnce(t *testing.T, c *clusterRun) {
	t.Helper()
	c.fake.WaitSent(t, 1, 10*time.Second)
	time.Sleep(3 * time.Second)
	if sent := c.fake.Sent(); len(sent) != 1 {
		t.Fatalf("the reply reached the SMS API %d times, want 1: %+v", len(sent), sent)
	}
}

// TestClusterStalledNodeRepliesSentOnce: a node that stalls (a paused VM, a
// stopped process, a network cut) for longer than deadAfter is declared
// dead by another node, which adopts its replies; then it comes back
// without a restart. From then on each reply it accepts must reach the SMS
// API once: the adopter must stop sending its replies when it is back, as
// it does when it restarts.
func TestClusterStalledNodeRepliesSentOnce(t *testing.T) {
	c, n1, n2, alice, _ := aliceOnN1(t)
	n1.cmd.Process.Signal(syscall.SIGSTOP)
	sbt.WaitFor(t, 20*time.Second, "n2 declares n1 dead and adopts its replies", func() bool {
		return strings.Contains(n2.logs.String(), "node declared dead: sending its pending replies")
	})
	n1.cmd.Process.Signal(syscall.SIGCONT)
	sbt.WaitFor(t, 20*time.Second, "n1 reads its own death and says it is alive", func() bool {
		return strings.Contains(n1.logs.String(), "this node was declared dead; saying it is alive")
	})
	// Alice's connection may not have survived the stall (its ping
	// deadlines passed while n1 was stopped): she signs in again.
	alice.Conn.Close()
	alice = n1.agent("alice", 5)

	const phone = "+15557770150"
	textReaches(t, n1, alice, "SMstall01", phone, "still there?")
	replies(t, alice, phone, "yes, still here", "r-stall")
	sentOnce(t, c)
}

// TestClusterAdoptedReplySentOnce: a node is killed while its reply is
// still being retried (the SMS API answered 503). The node that declares
// it dead sends the reply, once.
func TestClusterAdoptedReplySentOnce(t *testing.T) {
	c, n1, n2, alice, _ := aliceOnN1(t)
	const phone = "+15557770160"
	textReaches(t, n2, alice, "SMadopt01", phone, "will it come?")
	c.fake.FailNext(3, 503)
	replies(t, alice, phone, "it will", "r-adopt")
	c.fake.WaitSent(t, 1, 10*time.Second) // n1's first attempt, refused
	n1.kill()
	sent := c.fake.WaitAccepted(t, 1, 45*time.Second)
	if sent[0].To != phone || sent[0].Body != "it will" {
		t.Fatalf("accepted %+v", sent[0])
	}
	sbt.WaitFor(t, 10*time.Second, "n2 records the reply as handed over", func() bool {
		return replyStatus(t, n2, phone, "it will") == protocol.StatusQueued
	})
	time.Sleep(2 * time.Second) // a second sender would show itself
	if n := len(c.fake.Accepted()); n != 1 {
		t.Fatalf("the reply reached the SMS API %d times, want 1", n)
	}
}

// TestClusterReplyTakenAtDeathSentOnce: a node is killed after Twilio took
// its reply but before the answer came back. The node that adopts its
// replies finds the reply at Twilio and does not send it again.
func TestClusterReplyTakenAtDeathSentOnce(t *testing.T) {
	c, n1, n2, alice, _ := aliceOnN1(t)
	const phone = "+15557770170"
	textReaches(t, n2, alice, "SMtaken01", phone, "did you send it?")
	c.fake.HoldAnswers(1, 0) // until n1 is gone
	replies(t, alice, phone, "sent it", "r-taken")
	sent := c.fake.WaitAccepted(t, 1, 10*time.Second)
	n1.kill()
	sbt.WaitFor(t, 45*time.Second, "n2 finds the reply at Twilio", func() bool {
		return strings.Contains(n2.logs.String(), sent[0].Sid)
	})
	sbt.WaitFor(t, 10*time.Second, "the reply recorded as handed over on n2", func() bool {
		return replyStatus(t, n2, phone, "sent it") == protocol.StatusQueued
	})
	if n := len(c.fake.Accepted()); n != 1 {
		t.Fatalf("the reply reached the SMS API %d times, want 1", n)
	}
}

// replyStatus returns the status of the reply with text in phone's
// conversation on p ("" when there is none).
func replyStatus(t *testing.T, p *proc, phone, text string) protocol.Status {
	t.Helper()
	var list []protocol.Message
	if code := sbt.GetJSON(t, p.base+"/conversations/"+url.PathEscape(phone), admin, &list); code != 200 {
		t.Fatalf("conversation %s on %s: %d", phone, p.base, code)
	}
	for _, m := range list {
		if m.Direction == protocol.Out && m.Text == text {
			return m.Status
		}
	}
	return ""
}

// TestClusterPublishesTimeoutRelease: the RabbitMQ contract says
// conv.released.<agent> announces assignment changes to other services.
// When an agent stays disconnected past the grace period, its
// conversations leave it (reason "timeout"); single-node mode announces
// that, but in cluster mode only the node hosting the agent's session
// announces, and there is no session any more, so nobody does: a service
// bound to conv.released.# believes the agent still holds them.
func TestClusterPublishesTimeoutRelease(t *testing.T) {
	c := newClusterRun(t)
	n1, n2 := c.node("n1"), c.node("n2")
	releases := bindTap(t, c, "conv.released.#")

	alice := n1.agent("alice", 5)
	const phone = "+15557770200"
	textReaches(t, n2, alice, "SMtimeout01", phone, "anyone there?")
	alice.Conn.Close() // gone for longer than the grace period (1s)

	deadline := time.After(15 * time.Second)
	for {
		select {
		case d := <-releases:
			if d.RoutingKey == "conv.released.alice" && strings.Contains(string(d.Body), phone) {
				return
			}
		case <-deadline:
			t.Fatalf("no conv.released.alice for %s after alice's grace period expired", phone)
		}
	}
}

// bindTap binds a queue of the test's own to the cluster's exchange, as
// another service would, and returns its deliveries.
func bindTap(t *testing.T, c *clusterRun, pattern string) <-chan amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(c.amqp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, pattern, c.exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestClusterLateNodeLearnsCatalogChanges: a product added with PUT while
// a node was away (or before it joined) must be known to it once it has
// caught up, like everything else: otherwise GET /products/{id} differs
// between nodes, and navigation events for that product are counted as
// unknown on that node only, so the nodes' counters drift apart. Catalog
// changes travel on nav.catalog.<id> through a private queue, which a node
// that is not running never sees.
func TestClusterLateNodeLearnsCatalogChanges(t *testing.T) {
	c := newClusterRun(t)
	n1, n2 := c.node("n1"), c.node("n2")
	req, _ := http.NewRequest(http.MethodPut, n1.base+"/products/30", strings.NewReader(`{"title":"Tripod","category":"Cameras","price":25}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT /products/30: %d", resp.StatusCode)
	}
	known := func(p *proc) bool {
		var prod map[string]any
		return sbt.GetJSON(t, p.base+"/products/30", "", &prod) == 200
	}
	sbt.WaitFor(t, 10*time.Second, "n2 knows product 30", func() bool { return known(n2) })

	n3 := c.node("n3") // joins after the change; ready = caught up
	sbt.WaitFor(t, 10*time.Second, "the late node knows product 30", func() bool { return known(n3) })
}

// TestClusterAnnouncesAgentsOfADeadNodeGone: agent.presence.<agent> says
// "gone" when an agent's node dies (kill -9), not only when the agent
// disconnects: the node that declares the death says it, once.
func TestClusterAnnouncesAgentsOfADeadNodeGone(t *testing.T) {
	_, n1, n2, _, presence := aliceOnN1(t)
	n1.kill()
	sbt.WaitFor(t, 20*time.Second, "n2 declares n1 dead", func() bool {
		return strings.Contains(n2.logs.String(), "node silent: declaring it dead")
	})
	if node := announced(t, presence, "gone"); node != "n1" {
		t.Fatalf("gone from node %q, want n1", node)
	}
}

// announced waits for a presence event in state on presence and returns
// the node it names.
func announced(t *testing.T, presence <-chan amqp.Delivery, state string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	var seen []string
	for {
		select {
		case d := <-presence:
			seen = append(seen, string(d.Body))
			var ev struct{ State, Node string }
			if json.Unmarshal(d.Body, &ev) == nil && ev.State == state {
				return ev.Node
			}
		case <-deadline:
			t.Fatalf("no presence event %q; saw %q", state, seen)
			return ""
		}
	}
}
