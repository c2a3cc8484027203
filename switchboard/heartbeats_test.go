package switchboard

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

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
	n.cluster = &cluster{clusterDeps: clusterDeps{now: n.now}, node: "n1", members: hb, adopted: map[string]bool{"n3": true}}
	d := &dispatcher{dispatcherDeps: dispatcherDeps{now: n.now, role: n.cluster}}
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
