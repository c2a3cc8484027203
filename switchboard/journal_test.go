package switchboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/eventlog"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/store"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

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
