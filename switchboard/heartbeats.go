package switchboard

// This file holds heartbeats, which run only when nodes share the log: a
// node that hosts agents and falls silent is declared dead (membership.go
// applies that), and a node that does not hear its own heartbeat starts
// no send (dispatcher.ready). RabbitMQ does not give this: a consumer
// cancel or a connection close says nothing about a node that is stalled
// (a long GC pause, a full disk) or cut off while its TCP connection
// lingers, and only the nodes that still hear each other can agree on
// who is gone.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
)

// membership is what the node knows of the other nodes beside the log.
type membership interface {
	// start begins watching (heartbeats.run), once.
	start(ctx context.Context) error
	// hearsBroker reports whether this node can tell that it is not cut
	// off from the other nodes at now.
	hearsBroker(now time.Time) bool
}

// alone is the membership of a node that runs alone: nobody else can send
// its replies, so it never has to hold back.
type alone struct{}

func (alone) start(context.Context) error { return nil }
func (alone) hearsBroker(time.Time) bool  { return true }

// heartbeats is the membership of a node that shares the stream log.
type heartbeats struct {
	c    *cluster
	node string

	mu        sync.Mutex
	lastSeen  map[string]time.Time
	declared  map[string]time.Time
	backAt    time.Time // when our own heartbeats came back after an outage
	startedAt time.Time
}

func newHeartbeats(c *cluster) *heartbeats {
	return &heartbeats{c: c, node: c.node, lastSeen: map[string]time.Time{}, declared: map[string]time.Time{}}
}

func (h *heartbeats) start(ctx context.Context) error {
	c := h.c
	h.mu.Lock()
	h.startedAt = c.now()
	h.mu.Unlock()
	sub, err := c.bus.Subscribe(ctx, bus.SubscribeOptions{Bindings: []string{"node.heartbeat.*"}}, h.onHeartbeat)
	if err != nil {
		return fmt.Errorf("subscribe heartbeats: %w", err)
	}
	c.addSub(sub)
	c.goFunc(func() { h.run(ctx) })
	return nil
}

// hearsBroker reports whether this node heard its own heartbeat within
// leaseFor of now.
func (h *heartbeats) hearsBroker(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return now.Sub(h.lastSeen[h.node]) < leaseFor
}

// run publishes this node's heartbeat and declares silent nodes dead.
func (h *heartbeats) run(ctx context.Context) {
	c := h.c
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, heartbeatEvery)
		c.bus.Publish(hctx, keyHeartbeat(c.node), []byte(`{"node":"`+c.node+`"}`))
		cancel()
		h.checkDead(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *heartbeats) onHeartbeat(_ context.Context, d bus.Delivery) error {
	c := h.c
	node := strings.TrimPrefix(d.Key, "node.heartbeat.")
	now := c.now()
	h.mu.Lock()
	last, seen := h.lastSeen[node]
	h.lastSeen[node] = now
	h.mu.Unlock()
	if node == c.node && seen && now.Sub(last) > 2*heartbeatEvery {
		if now.Sub(last) >= 3*heartbeatEvery {
			// We were deaf (see mayDeclare): the others' silence since
			// then is not theirs.
			h.mu.Lock()
			h.backAt = now
			h.mu.Unlock()
		}
		// Back after an outage: the broker may have lost the log.
		select {
		case c.recheck <- struct{}{}:
		default:
		}
	}
	return nil
}

// checkDead declares dead the nodes that host agents and have been silent
// for deadAfter — but only while our own heartbeats come back, so a broker
// outage does not make every node declare every other dead.
func (h *heartbeats) checkDead(ctx context.Context) {
	c := h.c
	if !c.caughtUp.Load() {
		return
	}
	now := c.now()
	if !h.mayDeclare(now) {
		return
	}
	hosts := map[string]bool{}
	c.router.call(ctx, func() {
		for _, a := range c.router.engine.SnapshotAgents() {
			if a.Online && a.Node != "" && a.Node != c.node {
				hosts[a.Node] = true
			}
		}
	})
	for _, node := range h.silent(now, hosts) {
		c.log.Warn("node silent: declaring it dead", "node", node)
		ev := routeEvent{ID: c.store.NewID(), Node: node, State: "dead", By: c.node, At: now.UnixMilli()}
		if err := c.publish(ctx, keyNode(node), ev); err != nil {
			c.log.Warn("publish node death", "node", node, "err", err)
		}
	}
}

// mayDeclare reports whether this node can tell at now that another is
// silent: its own heartbeats come back (it hears the broker), and it has
// run for deadAfter.
func (h *heartbeats) mayDeclare(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return now.Sub(h.lastSeen[h.node]) < 3*heartbeatEvery && now.Sub(h.startedAt) >= deadAfter
}

// silent returns the hosts silent for deadAfter and not declared dead in
// the last 10*deadAfter, sorted, and marks them declared at now. Silence
// counts only while this node could hear: after an outage of its own
// (backAt; during a broker outage every node is silent, and the others
// reconnect up to a second or so after us) it counts from its return.
func (h *heartbeats) silent(now time.Time, hosts map[string]bool) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for node := range hosts {
		heard := h.lastSeen[node]
		if h.backAt.After(heard) {
			heard = h.backAt
		}
		if now.Sub(heard) >= deadAfter && now.Sub(h.declared[node]) >= 10*deadAfter {
			h.declared[node] = now
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out
}
