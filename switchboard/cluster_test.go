package switchboard

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/bus/amqpbus"
	"github.com/switchboard/switchboard/switchboard/bus/bustest"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// clusterExchange returns a fresh exchange name on the real broker and
// deletes what cluster nodes declare on it when the test ends.
func clusterExchange(t testing.TB) (amqpURL, exchange string) {
	t.Helper()
	amqpURL = bustest.AMQPURL(t)
	exchange = bustest.UniqueName(t, "sbc")
	bustest.DeleteOnCleanup(t, amqpURL, func() ([]string, []string) { return BrokerNames(exchange) })
	return amqpURL, exchange
}

func clusterNode(url, exchange, name string) func(*Options, *Config) {
	return func(o *Options, c *Config) {
		o.AMQPURL = url
		o.AMQPExchange = exchange
		o.Node = name
	}
}

func waitReady(t testing.TB, hs ...*harness) {
	t.Helper()
	for _, h := range hs {
		sbt.WaitFor(t, 10*time.Second, h.node.opts.Node+" ready", func() bool { return h.node.Ready() == nil })
	}
}

func conversationTexts(t *testing.T, h *harness, phone string) []string {
	t.Helper()
	list, err := h.node.store.Conversation(phone)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range list {
		out = append(out, fmt.Sprintf("%s|%s|%s|%s", m.ID, m.Direction, m.Text, m.Status))
	}
	return out
}

func TestClusterThreeNodes(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	n1 := startNode(t, clusterNode(amqpURL, ex, "n1"))
	n2 := startNode(t, clusterNode(amqpURL, ex, "n2"))
	n3 := startNode(t, clusterNode(amqpURL, ex, "n3"))
	waitReady(t, n1, n2, n3)

	alice := n1.agent("alice", 1) // on n1
	bob := n2.agent("bob", 1)     // on n2
	const c1, c2, c3 = "+15556660001", "+15556660002", "+15556660003"

	// Webhooks into two nodes; the conversations reach agents on any node.
	n3.sms("SMc1", c1, "hello from c1")
	f := expectEither(t, alice, bob, protocol.TypeAssigned)
	if f.frame.Phone != c1 {
		t.Fatalf("assigned %s, want %s", f.frame.Phone, c1)
	}
	n1.sms("SMc2", c2, "hello from c2")
	g := expectEither(t, alice, bob, protocol.TypeAssigned)
	if g.agent == f.agent || g.frame.Phone != c2 {
		t.Fatalf("second conversation went to the same agent (capacity 1)")
	}
	// Everyone busy: c3 waits; a Twilio retry through another node is one message.
	n2.sms("SMc3", c3, "anyone?")
	n3.sms("SMc3", c3, "anyone?")

	// A reply from the agent on n2 (or n1) goes out exactly once.
	owner := f.agent
	owner.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "Hi c1!", Ref: "ref-1"})
	ack := owner.Expect(protocol.TypeAck, nil, waitLong)
	sentBy := map[*harness]int{}
	sbt.WaitFor(t, waitLong, "the reply to be sent", func() bool {
		total := 0
		for _, h := range []*harness{n1, n2, n3} {
			sentBy[h] = len(h.twilio.Sent())
			total += sentBy[h]
		}
		return total >= 1
	})
	// Releasing c1 offers the waiting c3 to the same agent, across nodes.
	owner.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c1})
	owner.Expect(protocol.TypeReleased, func(f protocol.Frame) bool { return f.Phone == c1 }, waitLong)
	a3 := owner.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c3 }, waitLong)
	if len(a3.List) != 1 {
		t.Fatalf("c3 history = %+v (want one message: the retry is the same message)", a3.List)
	}

	// Every node converges on the same conversations.
	for _, phone := range []string{c1, c2, c3} {
		var want []string
		sbt.WaitFor(t, waitLong, "conversations equal on all nodes", func() bool {
			want = conversationTexts(t, n1, phone)
			return len(want) > 0 && reflect.DeepEqual(want, conversationTexts(t, n2, phone)) && reflect.DeepEqual(want, conversationTexts(t, n3, phone))
		})
	}
	if got := conversationTexts(t, n2, c1); len(got) != 2 || got[1] != ack.ID+"|out|Hi c1!|queued" && got[1] != ack.ID+"|out|Hi c1!|sent" {
		t.Fatalf("c1 on n2 = %v", got)
	}
	// Exactly one node sent it, exactly once.
	var sent []twiliotestSent
	for _, h := range []*harness{n1, n2, n3} {
		sent = append(sent, h.twilio.Sent()...)
	}
	if len(sent) != 1 || sent[0].To != c1 || sent[0].Body != "Hi c1!" {
		t.Fatalf("sent = %+v", sent)
	}
	// Twilio's status callback reaches a third node; the agent hears of it.
	code, _ := sbt.PostForm(t, n3.base, testPublic, "/sms/twilio/status", testAuthToken, url.Values{"MessageSid": {sent[0].Sid}, "MessageStatus": {"delivered"}})
	if code != 200 {
		t.Fatalf("status callback = %d", code)
	}
	owner.Expect(protocol.TypeStatus, func(f protocol.Frame) bool { return f.ID == ack.ID && f.Status == protocol.StatusDelivered }, waitLong)
	sbt.WaitFor(t, waitLong, "delivered on every node", func() bool {
		for _, h := range []*harness{n1, n2, n3} {
			if m, err := h.node.store.Message(ack.ID); err != nil || m.Status != protocol.StatusDelivered {
				return false
			}
		}
		return true
	})
}

type twiliotestSent = twiliotest.SentMessage

type either struct {
	agent *sbt.Agent
	frame protocol.Frame
}

// expectEither waits for a frame of type typ on either agent.
func expectEither(t *testing.T, a, b *sbt.Agent, typ string) either {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		if f, ok := a.TryExpect(typ, 50*time.Millisecond); ok {
			return either{a, f}
		}
		if f, ok := b.TryExpect(typ, 50*time.Millisecond); ok {
			return either{b, f}
		}
	}
	t.Fatalf("no %s frame on either agent", typ)
	return either{}
}

// TestClusterCapacityUnderConcurrentArrivals: webhooks for ten customers
// arrive at the same time on two nodes; two agents (capacity 1, on
// different nodes) get exactly one conversation each, and as they release,
// the waiting conversations are offered in the cluster-wide arrival order
// (the log's order), identical on every node.
func TestClusterCapacityUnderConcurrentArrivals(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	n1 := startNode(t, clusterNode(amqpURL, ex, "n1"))
	n2 := startNode(t, clusterNode(amqpURL, ex, "n2"))
	waitReady(t, n1, n2)
	alice := n1.agent("alice", 1)
	bob := n2.agent("bob", 1)
	// Both agents are available everywhere before the burst.
	sbt.WaitFor(t, waitLong, "both agents available on both nodes", func() bool {
		ok := true
		for _, h := range []*harness{n1, n2} {
			h.node.router.call(context.Background(), func() {
				for _, a := range []string{"alice", "bob"} {
					if l := h.node.router.engine.LoadOf(a); !l.Available {
						ok = false
					}
				}
			})
		}
		return ok
	})

	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			via := []*harness{n1, n2}[i%2]
			via.sms(fmt.Sprintf("SMcc%02d", i), fmt.Sprintf("+1555999%04d", i), "hello")
		}(i)
	}
	wg.Wait()

	first := map[string]string{}
	for name, a := range map[string]*sbt.Agent{"alice": alice, "bob": bob} {
		f := a.Expect(protocol.TypeAssigned, nil, waitLong)
		first[name] = f.Phone
		if extra, ok := a.TryExpect(protocol.TypeAssigned, 300*time.Millisecond); ok {
			t.Fatalf("%s got a second conversation %s with capacity 1", name, extra.Phone)
		}
	}
	if first["alice"] == first["bob"] {
		t.Fatalf("one conversation, two agents: %v", first)
	}
	// Both nodes agree on the waiting line, in arrival order.
	var line1, line2 []string
	sbt.WaitFor(t, waitLong, "the same waiting line on both nodes", func() bool {
		n1.node.router.call(context.Background(), func() { line1 = n1.node.router.engine.Waiting() })
		n2.node.router.call(context.Background(), func() { line2 = n2.node.router.engine.Waiting() })
		return len(line1) == 8 && reflect.DeepEqual(line1, line2)
	})
	// Releasing serves the line in that order, alternating agents as they free up.
	next := 0
	cur := map[*sbt.Agent]string{alice: first["alice"], bob: first["bob"]}
	for next < len(line1) {
		for _, a := range []*sbt.Agent{alice, bob} {
			if next >= len(line1) {
				break
			}
			a.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: cur[a]})
			f := a.Expect(protocol.TypeAssigned, nil, waitLong)
			if f.Phone != line1[next] {
				t.Fatalf("offered %s, want %s (position %d of %v)", f.Phone, line1[next], next, line1)
			}
			cur[a] = f.Phone
			next++
		}
	}
}

// startWrappedClusterNode starts cluster node n1 on a fresh exchange, on
// a RabbitMQ bus wrapped by wrap (a test's faulty bus).
func startWrappedClusterNode(t *testing.T, wrap func(bus.Bus) bus.Bus) *harness {
	t.Helper()
	amqpURL, ex := clusterExchange(t)
	ab := dialBus(t, amqpURL, ex)
	return startNode(t, func(o *Options, c *Config) {
		clusterNode(amqpURL, ex, "n1")(o, c)
		c.Bus = wrap(ab)
	})
}

// dialBus connects a RabbitMQ bus on exchange ex, as a cluster node does.
func dialBus(t testing.TB, amqpURL, ex string) bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ab, err := amqpbus.Dial(ctx, amqpbus.Options{URL: amqpURL, Exchange: ex, QueuePrefix: ex + ".", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return ab
}

// TestClusterReconnectAfterGraceSaysReleased: an agent whose grace period
// ran out while it was connected nowhere is told, on whichever node it
// comes back to, which conversations it lost — once.
func TestClusterReconnectAfterGraceSaysReleased(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	n1 := startNode(t, clusterNode(amqpURL, ex, "n1"))
	n2 := startNode(t, clusterNode(amqpURL, ex, "n2"))
	waitReady(t, n1, n2)
	alice := n1.agent("alice", 2)
	const phone = "+15556664001"
	n1.sms("SMgone1", phone, "hello?")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)
	alice.Conn.Close()
	bob := n2.agent("bob", 2)
	if f := bob.Expect(protocol.TypeAssigned, nil, waitLong); f.Phone != phone {
		t.Fatalf("bob got %s", f.Phone)
	}

	alice = sbt.DialAgent(t, n2.ws, n2.token("alice", 2))
	alice.Expect(protocol.TypeAlert, nil, waitLong)
	if f := alice.Expect(protocol.TypeReleased, nil, waitLong); f.Phone != phone || f.Reason != "timeout" {
		t.Fatalf("released %+v, want %s (timeout)", f, phone)
	}
	alice.Conn.Close()
	alice = sbt.DialAgent(t, n1.ws, n1.token("alice", 2))
	alice.Expect(protocol.TypeAlert, nil, waitLong)
	alice.ExpectNone(protocol.TypeReleased, 300*time.Millisecond)
}
