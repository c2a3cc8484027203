package switchboard

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// retained is a cluster node whose new log stream keeps only a few
// kilobytes in small segments, and that publishes a snapshot at every
// checkpoint.
func retained(amqpURL, ex, name string) func(*Options, *Config) {
	return func(o *Options, c *Config) {
		clusterNode(amqpURL, ex, name)(o, c)
		o.LogMaxBytes = 16 << 10
		c.logSegmentBytes = 4 << 10
		o.SnapshotEvery = 1
	}
}

// usableSnapshot reports the log's first offset and the offset of the
// latest snapshot, read from the broker as a joining node does.
func usableSnapshot(t *testing.T, h *harness) (first, snap int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	head, err := h.node.bus.(bus.StreamHead).Head(ctx, "log")
	if err != nil {
		t.Fatal(err)
	}
	snap = -1
	ds, err := h.node.bus.(bus.StreamLast).Last(ctx, snapshotQueue, 200*time.Millisecond)
	if err != nil {
		return head.Offset, -1 // not declared yet
	}
	for _, d := range ds {
		meta, _, _, err := decodeSnapshot(d.Body)
		if err != nil {
			t.Fatalf("published snapshot: %v", err)
		}
		snap = max(snap, meta.Offset)
	}
	return head.Offset, snap
}

// TestClusterJoinsFromASnapshot: retention removed the start of the log;
// a node that joins then loads a snapshot, converges with the others (the
// same conversations, the same routing) and an agent on it gets a
// conversation whose first messages only the snapshot held.
func TestClusterJoinsFromASnapshot(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	n1 := startNode(t, retained(amqpURL, ex, "n1"))
	n2 := startNode(t, retained(amqpURL, ex, "n2"))
	waitReady(t, n1, n2)
	alice := n1.agent("alice", 1)
	const phones = 20
	phone := func(i int) string { return fmt.Sprintf("+1555777%04d", i%phones) }
	sent := 0
	send := func() {
		n1.sms(fmt.Sprintf("SMsnap%d", sent), phone(sent), fmt.Sprintf("message %d", sent))
		sent++
	}
	for range phones {
		send()
	}
	alice.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == phone(0) }, waitLong)
	// Traffic until the broker has removed the log's start and a snapshot
	// covers what it removed.
	var first, snap int64
	sbt.WaitFor(t, 2*time.Minute, "retention to drop the log's start and a snapshot to cover it", func() bool {
		send()
		first, snap = usableSnapshot(t, n1)
		return first > int64(phones) && snap+1 >= first
	})
	t.Logf("sent %d messages; the log starts at %d, the latest snapshot is at %d", sent, first, snap)

	n3 := startNode(t, retained(amqpURL, ex, "n3"))
	waitReady(t, n3)
	var all []string
	for i := range phones {
		all = append(all, phone(i))
	}
	for _, p := range all {
		var want []string
		sbt.WaitFor(t, waitLong, "conversation "+p+" equal on every node", func() bool {
			want = conversationTexts(t, n1, p)
			return len(want) > 1 && reflect.DeepEqual(want, conversationTexts(t, n2, p)) && reflect.DeepEqual(want, conversationTexts(t, n3, p))
		})
	}
	sbt.WaitFor(t, waitLong, "the same routing on every node", func() bool {
		r := routingOf(n1, all...)
		return r == routingOf(n2, all...) && r == routingOf(n3, all...)
	})
	// phone(1) waits first: an agent on the new node gets it, with the
	// messages that are no longer in the log.
	bob := n3.agent("bob", 1)
	a := bob.Expect(protocol.TypeAssigned, nil, waitLong)
	if a.Phone != phone(1) || len(a.List) == 0 || a.List[0].Text != "message 1" {
		t.Fatalf("bob got %s with %d messages (first %+v), want %s from \"message 1\"", a.Phone, len(a.List), a.List, phone(1))
	}
	// And it goes on applying the log with the others, with no hole.
	send()
	sbt.WaitFor(t, waitLong, "the next message on every node", func() bool {
		return reflect.DeepEqual(conversationTexts(t, n1, phone(sent-1)), conversationTexts(t, n3, phone(sent-1)))
	})
	for _, h := range []*harness{n1, n2, n3} {
		if err := h.node.Ready(); err != nil {
			t.Errorf("%s: %v", h.node.opts.Node, err)
		}
	}
}
