package switchboard

// This file holds membership as the log tells it: node starts and deaths,
// and which node sends a dead node's replies. Heartbeats, which tell
// which nodes are silent, are heartbeats.go.

import "time"

// routeNode applies a node start or death. Runs on the router goroutine;
// returns what to do after the run.
func (c *cluster) routeNode(r *router, ev *routeEvent) []func() {
	switch ev.State {
	case "started":
		return c.nodeStarted(r, ev)
	case "alive":
		return c.nodeAlive(r, ev)
	case "dead":
		return c.nodeDead(r, ev)
	}
	return nil
}

// nodeStarted applies a node's start: its old connections are gone; our
// own start means we have caught up.
func (c *cluster) nodeStarted(r *router, ev *routeEvent) []func() {
	c.back(ev.Node)
	// Connections the engine still has on a node that just
	// (re)started are gone: it has no sessions yet.
	for agent, epoch := range r.engine.OnlineOn(ev.Node) {
		if r.engine.Disconnect(agent, epoch) && ev.Node == c.node {
			r.startGrace(agent, epoch)
		}
	}
	if ev.Node != c.node || ev.ID != c.startedID {
		return nil
	}
	// Caught up. Grace timers of agents that went offline while no
	// node was watching (a whole-cluster restart) restart here.
	for agent, epoch := range r.engine.Offline() {
		if !r.inGrace(agent) {
			r.startGrace(agent, epoch)
		}
	}
	r.armAllAnswers()
	return []func(){func() {
		c.checkpoint(c.ctx)
		if c.caughtUp.CompareAndSwap(false, true) {
			close(c.caughtUpCh)
		}
		c.log.Info("cluster: caught up with the log", "offset", c.offset)
		c.outbound.sweep()
	}}
}

// nodeAlive applies a node saying it is alive after it was declared dead.
func (c *cluster) nodeAlive(r *router, ev *routeEvent) []func() {
	c.back(ev.Node)
	if ev.Node != c.node || ev.By != c.node {
		return nil
	}
	return []func(){func() {
		// Our replies stored until now were the adopter's to send: any
		// of them may be at the provider already, or on its way there.
		wait := c.outbound.handOver(true)
		c.log.Warn("cluster: sending this node's replies again", "after", wait)
	}}
}

// nodeDead applies a node's death: its agents are disconnected, and the
// first node that declared it sends its pending replies.
func (c *cluster) nodeDead(r *router, ev *routeEvent) []func() {
	if ev.Node == c.node {
		// Declared dead (we were stalled or cut off): another node
		// sends our replies from here in the log, until we say we are
		// alive. Then say so, and that every local session is here.
		c.adoptMu.Lock()
		c.selfDead = true
		c.adoptMu.Unlock()
		return []func(){func() {
			if !c.caughtUp.Load() {
				return // replaying: our "started" comes later in the log
			}
			c.log.Warn("cluster: this node was declared dead; saying it is alive")
			ev := routeEvent{ID: c.store.NewID(), Node: c.node, State: "alive", By: c.node, At: c.now().UnixMilli()}
			if err := c.publish(c.ctx, keyNode(c.node), ev); err != nil {
				c.log.Error("publish alive", "err", err)
			}
			c.reassert()
		}}
	}
	var post []func()
	for agent, epoch := range r.engine.OnlineOn(ev.Node) {
		if r.engine.Disconnect(agent, epoch) {
			r.startGrace(agent, epoch) // it holds conversations
		}
		if ev.By == c.node {
			// Its node cannot say the agent is gone (agent.presence
			// of the contract): the node that declared it dead does.
			// Applied, the event changes nothing: the agent is
			// already offline.
			l := r.engine.LoadOf(agent)
			gone := presenceEvent{Agent: agent, Node: ev.Node, State: stateGone, Capacity: l.Capacity, Load: l.Active,
				At: ev.At, ID: c.store.NewID(), Session: c.current[agent]}
			post = append(post, func() {
				c.goFunc(func() {
					if err := c.publish(c.ctx, keyPresence(agent), gone); err != nil && c.ctx.Err() == nil {
						c.log.Warn("publish presence gone", "agent", agent, "err", err)
					}
				})
			})
		}
	}
	if _, taken := c.dead[ev.Node]; !taken {
		c.dead[ev.Node] = ev.By
	}
	if c.dead[ev.Node] != c.node {
		return post
	}
	node := ev.Node
	// Adopted here, in log order: a "started" of the same node later
	// in this run must undo it.
	c.adoptMu.Lock()
	c.adopted[node] = true
	c.adoptMu.Unlock()
	return append(post, func() {
		// An attempt it started before it fell silent can still reach
		// the provider: wait that out, then look each reply up before
		// sending it (dispatcher.uncertain).
		wait := c.outbound.handOver(false)
		c.log.Warn("node declared dead: sending its pending replies", "node", node, "after", wait)
	})
}

// back records in log order that node is alive (it started, or said so
// after it was declared dead): it sends its own replies again, and whoever
// adopted them while it was dead stops (else every reply it accepts from
// now on would be sent twice). Runs on the router goroutine.
func (c *cluster) back(node string) {
	delete(c.dead, node)
	c.adoptMu.Lock()
	delete(c.adopted, node)
	if node == c.node {
		c.selfDead = false
	}
	c.adoptMu.Unlock()
}

// reassert publishes the connection of every local session again.
func (c *cluster) reassert() {
	var list []*session
	c.router.call(c.ctx, func() { list = c.router.localSessions() })
	for _, s := range list {
		c.reannounce(s)
	}
}

// reannounce publishes the connection of local session s again, and its
// availability if the agent had declared it.
func (c *cluster) reannounce(s *session) {
	c.goFunc(func() {
		c.presence(c.ctx, s, stateConnected, 0)
		if s.available.Load() {
			c.presence(c.ctx, s, stateAvailable, int(s.lastCapacity.Load()))
		}
	})
}

// isCaughtUp, hearsBroker and self make the cluster the dispatcher's
// sendRole (with sends, below).
func (c *cluster) isCaughtUp() bool               { return c.caughtUp.Load() }
func (c *cluster) hearsBroker(now time.Time) bool { return c.members.hearsBroker(now) }
func (c *cluster) self() string                   { return c.node }

// sends reports whether this node sends replies accepted by origin: its
// own unless the log says it is dead (until it says it is alive again),
// and those of the dead nodes it adopted.
func (c *cluster) sends(origin string) bool {
	c.adoptMu.Lock()
	defer c.adoptMu.Unlock()
	if origin == c.node || origin == "" {
		return !c.selfDead
	}
	return c.adopted[origin]
}
