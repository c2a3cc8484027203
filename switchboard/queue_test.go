package switchboard

import (
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// TestQueueFrame: an agent hears how many conversations wait and how long
// the oldest has waited, on connect and when the line changes.
func TestQueueFrame(t *testing.T) {
	clock := &testClock{now: time.Now()}
	h := startNode(t, func(_ *Options, c *Config) { c.Now = clock.Now })
	isQueue := func(n int, ms int64) func(protocol.Frame) bool {
		return func(f protocol.Frame) bool { return f.Waiting == n && f.LongestWaitMs == ms }
	}
	alice := h.agent("alice", 1)
	alice.Expect(protocol.TypeQueue, isQueue(0, 0), waitLong) // on connect, nobody waits

	const c1, c2, c3 = "+15551400001", "+15551400002", "+15551400003"
	h.sms("SMq1", c1, "first")
	alice.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c1 }, waitLong)
	h.sms("SMq2", c2, "second") // alice is full: c2 waits
	alice.Expect(protocol.TypeQueue, isQueue(1, 0), waitLong)

	clock.Add(30 * time.Second)
	h.sms("SMq3", c3, "third")
	alice.Expect(protocol.TypeQueue, isQueue(2, 30_000), waitLong)

	clock.Add(2 * time.Second)
	bob := h.agent("bob", 1)
	if f := bob.Expect(protocol.TypeQueue, nil, waitLong); f.Waiting != 2 || f.LongestWaitMs != 32_000 {
		t.Fatalf("bob's queue frame on connect = %+v, want 2 waiting, the oldest for 32 s", f)
	}
	// bob takes c2: c3 is the oldest now, waiting since 32 s ago minus 30.
	bob.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c2 }, waitLong)
	alice.Expect(protocol.TypeQueue, isQueue(1, 2_000), waitLong)
	bob.Expect(protocol.TypeQueue, isQueue(1, 2_000), waitLong)
}

// TestQueueFrameAtMostOnceASecond: a change within a second of the last
// frame waits for the second to pass.
func TestQueueFrameAtMostOnceASecond(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var w waitLine
	if !w.due([]string{"+1a"}, t0) {
		t.Fatal("a first waiting conversation is not due")
	}
	w.sent([]string{"+1a"}, t0)
	if w.due([]string{"+1a", "+1b"}, t0.Add(999*time.Millisecond)) {
		t.Fatal("a change within a second of the last frame is due")
	}
	if w.due([]string{"+1a", "+1b"}[:1], t0.Add(time.Minute)) {
		t.Fatal("the line as last sent is due")
	}
	if !w.due([]string{"+1a", "+1b"}, t0.Add(time.Second)) {
		t.Fatal("a second waiting conversation a second later is not due")
	}
	if f := w.frame([]string{"+1a", "+1b"}, t0.Add(time.Second)); f.Waiting != 2 || f.LongestWaitMs != 1_000 {
		t.Fatalf("frame = %+v", f)
	}
	// The oldest was answered and another arrived: same count, new head.
	if !w.refresh([]string{"+1b", "+1c"}, t0.Add(2*time.Minute)) {
		t.Fatal("a new oldest conversation is no change")
	}
	if _, ok := w.since["+1a"]; ok {
		t.Fatal("an answered conversation is still timed")
	}
	// +1b has waited since t0+1s (it left the line at t0+1m and came back).
	if f := w.frame([]string{"+1b", "+1c"}, t0.Add(2*time.Minute)); f.Waiting != 2 || f.LongestWaitMs != 119_000 {
		t.Fatalf("frame = %+v, want +1b's wait of 119 s", f)
	}
}

// TestClusterQueueFrame: in cluster mode every node has the same waiting
// line and tells its own agents about it.
func TestClusterQueueFrame(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	n1 := startNode(t, clusterNode(amqpURL, ex, "n1"))
	n2 := startNode(t, clusterNode(amqpURL, ex, "n2"))
	waitReady(t, n1, n2)
	waiting := func(n int) func(protocol.Frame) bool { return func(f protocol.Frame) bool { return f.Waiting == n } }
	alice := n1.agent("alice", 1)
	alice.Expect(protocol.TypeQueue, waiting(0), waitLong)
	bob := sbt.DialAgent(t, n2.ws, n2.token("bob", 1)) // connected, never available
	bob.Expect(protocol.TypeQueue, waiting(0), waitLong)

	const c1, c2 = "+15551410001", "+15551410002"
	n1.sms("SMcq1", c1, "first")
	alice.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c1 }, waitLong)
	n2.sms("SMcq2", c2, "second") // alice is full, bob is not available
	alice.Expect(protocol.TypeQueue, waiting(1), waitLong)
	bob.Expect(protocol.TypeQueue, waiting(1), waitLong)

	alice.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c1})
	alice.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c2 }, waitLong)
	alice.Expect(protocol.TypeQueue, waiting(0), waitLong)
	bob.Expect(protocol.TypeQueue, waiting(0), waitLong)
}
