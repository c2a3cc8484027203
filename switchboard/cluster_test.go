package switchboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/bus/amqpbus"
	"github.com/switchboard/switchboard/switchboard/bus/bustest"
	"github.com/switchboard/switchboard/switchboard/eventlog"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	"github.com/switchboard/switchboard/switchboard/store"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// clusterExchange returns a fresh exchange name on the real broker and
// deletes what cluster nodes declare on it when the test ends.
func clusterExchange(t *testing.T) (amqpURL, exchange string) {
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

func waitReady(t *testing.T, hs ...*harness) {
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ab, err := amqpbus.Dial(ctx, amqpbus.Options{URL: amqpURL, Exchange: ex, QueuePrefix: ex + ".", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, func(o *Options, c *Config) {
		clusterNode(amqpURL, ex, "n1")(o, c)
		c.Bus = wrap(ab)
	})
}

// dropFirst is a bus that fails the first publish of a key with prefix, as
// a broker that fails over at the wrong moment would.
type dropFirst struct {
	bus.Bus
	prefix  string
	dropped atomic.Bool
}

func (d *dropFirst) Publish(ctx context.Context, key string, body []byte) error {
	if strings.HasPrefix(key, d.prefix) && d.dropped.CompareAndSwap(false, true) {
		return errors.New("test: publish dropped")
	}
	return d.Bus.Publish(ctx, key, body)
}

// TestClusterRepublishesAFailedPublish: a webhook whose publish to the log
// fails is still answered 200 (its journal entry is durable); the journal
// republishes it, and it reaches the agent once.
func TestClusterRepublishesAFailedPublish(t *testing.T) {
	var drop *dropFirst
	n1 := startWrappedClusterNode(t, func(b bus.Bus) bus.Bus {
		drop = &dropFirst{Bus: b, prefix: "sms.in."}
		return drop
	})
	waitReady(t, n1)
	alice := n1.agent("alice", 5)
	// After the first read of the journal (at start it reads everything),
	// the next comes journalScanEvery later unless a publish fails: only
	// the failed publish below can make the republisher look in time.
	sbt.WaitFor(t, waitLong, "the first read of the journal", func() bool { return n1.node.cluster.accept.(*journal).scans.Load() >= 1 })
	const phone = "+15556661234"
	n1.sms("SMrepub1", phone, "lost on the way, found again")
	if !drop.dropped.Load() {
		t.Fatal("the publish was not dropped")
	}
	f := alice.Expect(protocol.TypeAssigned, nil, republishAfter+journalSweepEvery+waitLong)
	if f.Phone != phone || len(f.List) != 1 || f.List[0].Text != "lost on the way, found again" {
		t.Fatalf("assigned %+v", f)
	}
	sbt.WaitFor(t, waitLong, "stored once", func() bool { return len(n1.stored(phone)) == 1 })
	alice.ExpectNone(protocol.TypeUpdate, 300*time.Millisecond) // not delivered twice
}

// holeBus drops the first log entry published with a key starting with
// prefix from the node's log subscription, as a retention policy that
// removed entries the node had not read yet would.
type holeBus struct {
	bus.Bus
	prefix  string
	dropped atomic.Bool
}

func (b *holeBus) Subscribe(ctx context.Context, o bus.SubscribeOptions, h bus.Handler) (bus.Subscription, error) {
	if o.Queue != "log" {
		return b.Bus.Subscribe(ctx, o, h)
	}
	return b.Bus.Subscribe(ctx, o, func(ctx context.Context, d bus.Delivery) error {
		if strings.HasPrefix(d.Key, b.prefix) && b.dropped.CompareAndSwap(false, true) {
			return nil
		}
		return h(ctx, d)
	})
}

// TestClusterReportsAHoleInTheLog: a node that finds entries missing from
// the log (it cannot converge any more) says so in its readiness.
func TestClusterReportsAHoleInTheLog(t *testing.T) {
	var hole *holeBus
	n1 := startWrappedClusterNode(t, func(b bus.Bus) bus.Bus {
		hole = &holeBus{Bus: b, prefix: "sms.in."}
		return hole
	})
	waitReady(t, n1)
	n1.sms("SMhole1", "+15556661235", "this one goes missing")
	n1.sms("SMhole2", "+15556661235", "this one arrives")
	sbt.WaitFor(t, waitLong, "the entry after the hole applied", func() bool { return len(n1.stored("+15556661235")) == 1 })
	if !hole.dropped.Load() {
		t.Fatal("nothing was dropped")
	}
	err := n1.node.Ready()
	if err == nil || !strings.Contains(err.Error(), "were removed from the stream before this node applied them") {
		t.Fatalf("Ready() = %v, want the hole reported", err)
	}
}

// recordingBus records the order of publishes per key; each publish takes
// a random moment, as confirms do, and keys listed in fail fail on their
// failAt-th publish.
type recordingBus struct {
	bus.Bus
	mu     sync.Mutex
	order  map[string][]string
	counts map[string]int
	fail   map[string]int
}

func (r *recordingBus) Publish(ctx context.Context, key string, body []byte) error {
	time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[key]++
	if n, ok := r.fail[key]; ok && r.counts[key] == n {
		return errors.New("test: publish failed")
	}
	r.order[key] = append(r.order[key], string(body))
	return nil
}

// TestRepublishKeepsOrderPerKey: journal entries republished after an
// outage reach the log in their original order per routing key (two
// replies to one customer must not swap), and nothing of a key is
// published after that key's failed entry.
func TestRepublishKeepsOrderPerKey(t *testing.T) {
	const keys, each = 20, 15
	var entries []store.JournalEntry
	for i := range each {
		for k := range keys {
			key := fmt.Sprintf("sms.out.1555000%04d", k)
			entries = append(entries, store.JournalEntry{ID: fmt.Sprintf("%04d-%02d", i, k), Key: key, Body: []byte(fmt.Sprint(i))})
		}
	}
	rec := &recordingBus{order: map[string][]string{}, counts: map[string]int{}, fail: map[string]int{}}
	c := &journal{c: &cluster{elog: eventlog.NewStream(rec, "log", nil), log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	if !c.republishAll(context.Background(), entries) {
		t.Fatal("republishAll reported a failure")
	}
	for k := range keys {
		key := fmt.Sprintf("sms.out.1555000%04d", k)
		got := rec.order[key]
		if len(got) != each {
			t.Fatalf("%s: %d published, want %d", key, len(got), each)
		}
		for i, b := range got {
			if b != fmt.Sprint(i) {
				t.Fatalf("%s: published in the order %v, want 0..%d", key, got, each-1)
			}
		}
	}

	// The third entry of one key fails: the rest of that key is not
	// published (a later sweep sends them, in order).
	failing := "sms.out.15550000007"
	rec = &recordingBus{order: map[string][]string{}, counts: map[string]int{}, fail: map[string]int{failing: 3}}
	c.c.elog = eventlog.NewStream(rec, "log", nil)
	if c.republishAll(context.Background(), entries) {
		t.Fatal("republishAll reported success despite a failed publish")
	}
	if got := rec.order[failing]; len(got) != 2 || got[0] != "0" || got[1] != "1" {
		t.Fatalf("%s: published %v, want [0 1] and nothing after the failure", failing, got)
	}
}

func TestLogHeadReplacedBy(t *testing.T) {
	h := logHead{Offset: 0, Sum: "aa"}
	for _, tc := range []struct {
		cur  logHead
		want bool
	}{
		{logHead{0, "aa"}, false},  // the same log
		{logHead{0, "bb"}, true},   // deleted and declared again: offset 0 again, another entry
		{logHead{40, "cc"}, false}, // the same log, its head removed by retention
	} {
		if got := h.replacedBy(tc.cur); got != tc.want {
			t.Errorf("%+v.replacedBy(%+v) = %v, want %v", h, tc.cur, got, tc.want)
		}
	}
	if !(logHead{Offset: 40, Sum: "cc"}).replacedBy(logHead{Offset: 0, Sum: "cc"}) {
		t.Error("a first offset that went back must mean a new log")
	}
	a := headOf(0, "route.node.n1", []byte(`{"id":"1"}`))
	b := headOf(0, "route.node.n1", []byte(`{"id":"2"}`))
	c := headOf(0, "route.node.n", []byte(`1{"id":"1"}`))
	if a.Sum == b.Sum || a.Sum == c.Sum || a != headOf(0, "route.node.n1", []byte(`{"id":"1"}`)) {
		t.Errorf("headOf: %v %v %v", a, b, c)
	}
}

// restartable starts cluster node name on exchange ex with its data in dir,
// so that it can be started again on the same data.
func restartable(amqpURL, ex, name, dir string, checkEvery time.Duration) func(*Options, *Config) {
	return func(o *Options, c *Config) {
		clusterNode(amqpURL, ex, name)(o, c)
		o.DataDir = dir
		c.logCheckEvery = checkEvery
	}
}

func stopNode(t *testing.T, h *harness) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.node.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestClusterReplaysAReplacedLog: a node restarted on a log that is not the
// one its checkpoint describes (the broker lost the log) replays the new
// log from its start instead of waiting for offsets it had already applied.
func TestClusterReplaysAReplacedLog(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	dir := t.TempDir()
	n1 := startNode(t, restartable(amqpURL, ex, "n1", dir, 0))
	waitReady(t, n1)
	alice := n1.agent("alice", 5)
	const before, after = "+15556662001", "+15556662002"
	n1.sms("SMold1", before, "before the broker lost the log")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)
	stopNode(t, n1) // saves a checkpoint of what it applied

	bustest.DeleteQueue(t, amqpURL, ex+".log")

	n1 = startNode(t, restartable(amqpURL, ex, "n1", dir, 0))
	waitReady(t, n1)
	if got := conversationTexts(t, n1, before); len(got) != 1 || !strings.Contains(got[0], "before the broker lost the log") {
		t.Fatalf("conversation from before = %v", got)
	}
	bob := n1.agent("bob", 5)
	n1.sms("SMnew1", after, "after")
	if f := bob.Expect(protocol.TypeAssigned, nil, waitLong); f.Phone != after {
		t.Fatalf("assigned %+v, want %s", f, after)
	}
	if h := n1.node.cluster.head; h.Offset != 0 {
		t.Fatalf("head = %+v, want the new log's offset 0", h)
	}
}

// TestClusterFailsWhenItsLogIsReplaced: a running node whose log is
// deleted (declared again empty by the bus) fails, reports not ready, and
// once restarted replays the new log, which holds what was accepted since.
func TestClusterFailsWhenItsLogIsReplaced(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	dir := t.TempDir()
	n1 := startNode(t, restartable(amqpURL, ex, "n1", dir, 50*time.Millisecond))
	waitReady(t, n1)
	alice := n1.agent("alice", 5)
	const before, after = "+15556662003", "+15556662004"
	n1.sms("SMold2", before, "before")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)

	bustest.DeleteQueue(t, amqpURL, ex+".log")
	// Accepted (journaled) whether or not the log was declared again yet.
	n1.sms("SMnew2", after, "accepted while the log was being replaced")
	var failure error
	select {
	case failure = <-n1.node.Failed():
	case <-time.After(republishAfter + journalSweepEvery + waitLong):
		t.Fatal("the node did not fail after its log was deleted")
	}
	if !strings.Contains(failure.Error(), "cluster log replaced") {
		t.Fatalf("failure = %v", failure)
	}
	if err := n1.node.Ready(); err == nil || !strings.Contains(err.Error(), "cluster log replaced") {
		t.Fatalf("Ready() = %v, want the replaced log", err)
	}
	stopNode(t, n1)

	n1 = startNode(t, restartable(amqpURL, ex, "n1", dir, 50*time.Millisecond))
	waitReady(t, n1)
	sbt.WaitFor(t, waitLong, "the SMS accepted during the replacement applied", func() bool {
		got := conversationTexts(t, n1, after)
		return len(got) == 1 && strings.Contains(got[0], "accepted while the log was being replaced")
	})
	if got := conversationTexts(t, n1, before); len(got) != 1 {
		t.Fatalf("conversation from before = %v", got)
	}
	select {
	case err := <-n1.node.Failed():
		t.Fatalf("the restarted node failed: %v", err)
	case <-time.After(200 * time.Millisecond): // a few checks of the head
	}
}

// routingOf describes h's routing of phones: each one's agent, then the
// waiting line.
func routingOf(h *harness, phones ...string) string {
	var b strings.Builder
	h.node.router.call(context.Background(), func() {
		e := h.node.router.engine
		for _, p := range phones {
			fmt.Fprintf(&b, "%s→%q ", p, e.Owner(p))
		}
		fmt.Fprintf(&b, "waiting %v", e.Waiting())
	})
	return b.String()
}

// TestClusterAgreesAfterALostLog: two nodes that had applied the old log
// to different points (one was down) route alike once the broker lost the
// log, and agents keep the conversations they held.
func TestClusterAgreesAfterALostLog(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	d1, d2 := t.TempDir(), t.TempDir()
	node := func(name, dir string) func(*Options, *Config) {
		return func(o *Options, c *Config) {
			restartable(amqpURL, ex, name, dir, 0)(o, c)
			o.Grace = time.Minute // the agents come back within it
		}
	}
	const p1, p2, p3, p4 = "+15556663001", "+15556663002", "+15556663003", "+15556663004"
	n1 := startNode(t, node("n1", d1))
	n2 := startNode(t, node("n2", d2))
	waitReady(t, n1, n2)
	alice := n1.agent("alice", 2)
	n1.sms("SMlost1", p1, "one")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)
	sbt.WaitFor(t, waitLong, "n2 routed "+p1, func() bool { return strings.Contains(routingOf(n2, p1), `"alice"`) })
	stopNode(t, n2) // saves a checkpoint of what it applied

	// n1 goes on alone: alice gets p2, p3 waits. n2 never hears of them.
	n1.sms("SMlost2", p2, "two")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)
	n1.sms("SMlost3", p3, "three")
	want := fmt.Sprintf(`%s→"alice" %s→"alice" %s→"" waiting [%s]`, p1, p2, p3, p3)
	sbt.WaitFor(t, waitLong, "n1 routed p2 and p3", func() bool { return routingOf(n1, p1, p2, p3) == want })
	stopNode(t, n1)

	bustest.DeleteQueue(t, amqpURL, ex+".log")

	// n2, which knows least, restores first: the first restore of a
	// conversation wins, and every node applies the same ones.
	n2 = startNode(t, node("n2", d2))
	waitReady(t, n2)
	n1 = startNode(t, node("n1", d1))
	waitReady(t, n1)
	for _, h := range []*harness{n1, n2} {
		sbt.WaitFor(t, waitLong, h.node.opts.Node+" routes as before the loss", func() bool { return routingOf(h, p1, p2, p3) == want })
	}

	// alice comes back, on the node that had not heard of p2: she has
	// both again. bob takes the waiting one; a new SMS waits on both.
	alice = n2.agent("alice", 2)
	got := map[string]bool{}
	for range 2 {
		got[alice.Expect(protocol.TypeAssigned, nil, waitLong).Phone] = true
	}
	if !got[p1] || !got[p2] {
		t.Fatalf("alice got %v back, want %s and %s", got, p1, p2)
	}
	bob := n1.agent("bob", 1)
	if f := bob.Expect(protocol.TypeAssigned, nil, waitLong); f.Phone != p3 {
		t.Fatalf("bob got %s, want the waiting %s", f.Phone, p3)
	}
	n2.sms("SMlost4", p4, "four")
	want = fmt.Sprintf(`%s→"alice" %s→"alice" %s→"bob" %s→"" waiting [%s]`, p1, p2, p3, p4, p4)
	for _, h := range []*harness{n1, n2} {
		sbt.WaitFor(t, waitLong, h.node.opts.Node+" agrees", func() bool { return routingOf(h, p1, p2, p3, p4) == want })
	}
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

// TestNoDeathRightAfterABrokerOutage: during a broker outage every node is
// silent. The node whose heartbeats come back first must not declare the
// others dead before they had deadAfter to come back too: the node it
// declares dead is alive and sends its own replies, and the declaring
// node would send them again.
func TestNoDeathRightAfterABrokerOutage(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := &heartbeats{node: "n1", lastSeen: map[string]time.Time{}, declared: map[string]time.Time{}, startedAt: t0}
	hosts := map[string]bool{"n2": true, "n3": true}
	hb := func(node string, at time.Time) { c.lastSeen[node] = at }

	// Running along: n3 falls silent, n2 does not.
	for s := 0; s <= 10; s++ {
		at := t0.Add(time.Duration(s) * time.Second)
		hb("n1", at)
		hb("n2", at)
		if s <= 4 {
			hb("n3", at)
		}
	}
	now := t0.Add(10 * time.Second)
	if !c.mayDeclare(now) {
		t.Fatal("a settled node may not declare")
	}
	if got := c.silent(now, hosts); !reflect.DeepEqual(got, []string{"n3"}) {
		t.Fatalf("silent = %v, want [n3]", got)
	}
	if got := c.silent(now.Add(time.Second), hosts); len(got) != 0 {
		t.Fatalf("declared again at once: %v", got)
	}

	// A broker outage of 6 s: nobody hears anybody. n1 is back first.
	back := now.Add(6 * time.Second)
	c.backAt = back
	hb("n1", back)
	for s := range 5 {
		at := back.Add(time.Duration(s) * time.Second)
		hb("n1", at)
		if !c.mayDeclare(at) {
			t.Fatalf("%v after its return n1 may not declare", at.Sub(back))
		}
		if got := c.silent(at, map[string]bool{"n2": true}); len(got) != 0 {
			t.Fatalf("%v after its own return, n1 declares %v (silent for %v) dead", at.Sub(back), got, at.Sub(c.lastSeen["n2"]))
		}
		if s == 1 {
			hb("n2", at) // n2 is back a second later
		}
	}
	// n2 stays; a node that does not come back is dead deadAfter after our
	// return.
	at := back.Add(deadAfter)
	hb("n1", at)
	hb("n2", at)
	if got := c.silent(at, map[string]bool{"n2": true, "n4": true}); !reflect.DeepEqual(got, []string{"n4"}) {
		t.Fatalf("silent = %v after the outage, want [n4]", got)
	}
}

// TestSendReadiness: a cluster node starts a send only while it hears the
// broker (others declare a silent node dead and send its replies), only for
// replies that are its own or adopted, and an uncertain reply only after
// the hand-over.
func TestSendReadiness(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	n := &Node{now: func() time.Time { return now }}
	hb := &heartbeats{node: "n1", lastSeen: map[string]time.Time{"n1": now}}
	n.cluster = &cluster{n: n, node: "n1", members: hb, adopted: map[string]bool{"n3": true}}
	d := &dispatcher{n: n}
	quick := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 50*time.Millisecond)
	}
	ctx, cancel := quick()
	defer cancel()
	for origin, want := range map[string]error{"n1": nil, "n3": nil, "n2": errNotHere} {
		if err := d.ready(ctx, origin, false); !errors.Is(err, want) {
			t.Errorf("ready(%s) = %v, want %v", origin, err, want)
		}
	}

	hb.lastSeen["n1"] = now.Add(-leaseFor)
	ctx, cancel = quick()
	defer cancel()
	if err := d.ready(ctx, "n1", false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ready without hearing the broker = %v, want to wait", err)
	}

	hb.lastSeen["n1"] = now
	d.holdUntil = now.Add(time.Second)
	ctx, cancel = quick()
	defer cancel()
	if err := d.ready(ctx, "n3", true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("uncertain reply during the hand-over = %v, want to wait", err)
	}
	if err := d.ready(context.Background(), "n3", false); err != nil {
		t.Fatalf("certain reply during the hand-over = %v", err)
	}
	n.cluster.selfDead = true
	if err := d.ready(context.Background(), "n1", false); !errors.Is(err, errNotHere) {
		t.Fatalf("own reply while declared dead = %v, want %v", err, errNotHere)
	}
}

// TestClusterKeepsAdoptedRepliesAfterALostLog: a node that sends a dead
// node's pending replies goes on sending them after the broker lost the
// log: the new log says again that the node is dead, adopted by it.
func TestClusterKeepsAdoptedRepliesAfterALostLog(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	dir := t.TempDir()
	n1 := startNode(t, restartable(amqpURL, ex, "n1", dir, 0))
	waitReady(t, n1)
	// n9 died before the loss, and n1 declared it.
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	ev := routeEvent{ID: n1.node.store.NewID(), Node: "n9", State: "dead", By: "n1", At: time.Now().UnixMilli()}
	if err := n1.node.cluster.publish(ctx, keyNode("n9"), ev); err != nil {
		t.Fatal(err)
	}
	sbt.WaitFor(t, waitLong, "n1 sends n9's replies", func() bool { return n1.node.cluster.sends("n9") })
	stopNode(t, n1)

	bustest.DeleteQueue(t, amqpURL, ex+".log")

	n1 = startNode(t, restartable(amqpURL, ex, "n1", dir, 0))
	waitReady(t, n1)
	if !n1.node.cluster.sends("n9") {
		t.Fatal("after the lost log nobody sends the replies n9 left pending")
	}
}
