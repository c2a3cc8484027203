package switchboard

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/bus/bustest"
	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// holeBus drops the first log entry published with a key starting with
// prefix from the node's log subscription, and from then on says the log
// starts after it: as a retention policy that removed entries the node had
// not read yet would.
type holeBus struct {
	bus.Bus
	prefix  string
	dropped atomic.Int64 // offset + 1 of the dropped entry; 0 = none yet
}

func (b *holeBus) Subscribe(ctx context.Context, o bus.SubscribeOptions, h bus.Handler) (bus.Subscription, error) {
	if o.Queue != "log" {
		return b.Bus.Subscribe(ctx, o, h)
	}
	return b.Bus.Subscribe(ctx, o, func(ctx context.Context, d bus.Delivery) error {
		if strings.HasPrefix(d.Key, b.prefix) && b.dropped.CompareAndSwap(0, d.Offset+1) {
			return nil
		}
		return h(ctx, d)
	})
}

func (b *holeBus) Head(ctx context.Context, queue string) (bus.Delivery, error) {
	d, err := b.Bus.(bus.StreamHead).Head(ctx, queue)
	if gone := b.dropped.Load(); err == nil && queue == "log" && d.Offset < gone {
		d.Offset = gone // the entries up to the dropped one are "removed"
	}
	return d, err
}

func (b *holeBus) Last(ctx context.Context, queue string, idle time.Duration) ([]bus.Delivery, error) {
	return b.Bus.(bus.StreamLast).Last(ctx, queue, idle)
}

// TestClusterStopsAtAHoleInTheLog: a node that finds entries removed
// from the log before it applied them (it cannot converge by applying the
// log any more) applies nothing past them and says why in its readiness;
// once another node publishes a snapshot past the hole it fails, so that
// its supervisor restarts it, and restarted it converges with the others.
func TestClusterStopsAtAHoleInTheLog(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	dir := t.TempDir()
	var hole *holeBus
	n1 := startNode(t, func(o *Options, c *Config) {
		restartable(amqpURL, ex, "n1", dir, 0)(o, c)
		c.holeRecheck = 50 * time.Millisecond
		hole = &holeBus{Bus: dialBus(t, amqpURL, ex), prefix: "sms.in."}
		c.Bus = hole
	})
	n2 := startNode(t, func(o *Options, c *Config) {
		clusterNode(amqpURL, ex, "n2")(o, c)
		o.SnapshotEvery = 1
	})
	waitReady(t, n1, n2)
	const phone = "+15556661235"
	n1.sms("SMhole1", phone, "this one goes missing on n1")
	n1.sms("SMhole2", phone, "this one arrives after the hole")
	sbt.WaitFor(t, waitLong, "n1 to find the hole", func() bool { return n1.node.Ready() != nil })
	if err := n1.node.Ready(); !strings.Contains(err.Error(), "were removed from the stream before this node applied them") {
		t.Fatalf("Ready() = %v, want the hole reported", err)
	}
	if hole.dropped.Load() == 0 {
		t.Fatal("nothing was dropped")
	}
	select {
	case err := <-n1.node.Failed():
		if !strings.Contains(err.Error(), "a snapshot at offset") {
			t.Fatalf("failure = %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("n1 did not fail once n2 published a snapshot past the hole")
	}
	if got := n1.stored(phone); len(got) != 0 {
		t.Fatalf("n1 applied %d messages past the hole, want none", len(got))
	}
	stopNode(t, n1)

	n1 = startNode(t, restartable(amqpURL, ex, "n1", dir, 0))
	waitReady(t, n1)
	sbt.WaitFor(t, waitLong, "n1 to converge with n2", func() bool {
		return len(n1.stored(phone)) == 2 && reflect.DeepEqual(conversationTexts(t, n1, phone), conversationTexts(t, n2, phone))
	})
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
