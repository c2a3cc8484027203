package switchboard

import (
	"context"
	"log/slog"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/route"
	"github.com/switchboard/switchboard/switchboard/store"
)

// loadEvery is how often the router refreshes its load gauges.
const loadEvery = 500 * time.Millisecond

// router owns the routing engine, the live agent sessions and the grace
// timers. All of them are touched only by the router goroutine: other
// goroutines hand it work with do (fire and forget) or call (wait for the
// answer), so routing decisions are serialized and capacity can never be
// exceeded by concurrent arrivals.
type router struct {
	n        *Node
	log      *slog.Logger
	engine   *route.Engine
	sessions map[string]*session
	timers   map[string]*time.Timer
	// lost holds, per agent, the conversations taken from it while it was
	// offline (its grace period ran out). Its client still shows them, so
	// they are sent as released when it connects again.
	lost   map[string][]route.Effect
	maxSeq uint64
	// loadDirty says the load gauges are stale.
	loadDirty bool
	queue     waitLine // what agents last heard of the waiting line (queue.go)

	work    chan func()
	persist chan store.ConvState
	stopped chan struct{}
}

func newRouter(n *Node) *router {
	return &router{
		n:        n,
		log:      n.logBase.With("component", "router"),
		engine:   route.New(n.opts.DefaultCapacity),
		sessions: make(map[string]*session),
		timers:   make(map[string]*time.Timer),
		lost:     make(map[string][]route.Effect),
		work:     make(chan func(), 4096),
		persist:  make(chan store.ConvState, 4096),
		stopped:  make(chan struct{}),
	}
}

// restore loads routing state from the store. Agents that held
// conversations get a fresh grace period to reconnect.
func (r *router) restore() error {
	var convs []route.Conversation
	err := r.n.store.Conversations(func(c store.ConvState) error {
		if c.WaitSeq > r.maxSeq {
			r.maxSeq = c.WaitSeq
		}
		if c.Agent != "" || c.Waiting {
			convs = append(convs, route.Conversation{Phone: c.Phone, Agent: c.Agent, LastAgent: c.LastAgent, Waiting: c.Waiting, WaitSeq: c.WaitSeq})
		}
		return nil
	})
	if err != nil {
		return err
	}
	epochs := r.engine.Restore(convs, r.n.now())
	for agent, epoch := range epochs {
		r.startGrace(agent, epoch)
	}
	r.log.Info("routing state restored", "conversations", len(convs), "waiting", len(r.engine.Waiting()), "agents", len(epochs))
	return nil
}

// run processes work until ctx is done. The persister runs beside it so that
// routing never waits for the disk; assignment writes keep their order.
func (r *router) run(ctx context.Context) {
	defer close(r.stopped)
	persisted := make(chan struct{})
	go func() {
		defer close(persisted)
		r.persistLoop()
	}()
	defer func() {
		for _, t := range r.timers {
			t.Stop()
		}
		close(r.persist)
		<-persisted
	}()
	gauges := time.NewTicker(loadEvery)
	defer gauges.Stop()
	for {
		select {
		case f := <-r.work:
			f()
		case <-gauges.C:
			if r.loadDirty {
				r.publishLoad()
			}
			r.tickQueue()
		case <-ctx.Done():
			return
		}
	}
}

func (r *router) persistLoop() {
	for c := range r.persist {
		// Losing one of these in a crash is safe: the store marks a
		// conversation waiting in the same write as its message, so a
		// restarted node offers it again.
		if err := r.n.store.PutConvState(context.Background(), c); err != nil {
			r.log.Error("persist routing state", "phone", c.Phone, "err", err)
		}
	}
}

// do runs f on the router goroutine. It blocks only while the work queue is
// full (backpressure) and gives up when ctx ends.
func (r *router) do(ctx context.Context, f func()) bool {
	select {
	case r.work <- f:
		return true
	case <-r.stopped:
		return false
	case <-ctx.Done():
		return false
	}
}

// call runs f on the router goroutine and waits for it.
func (r *router) call(ctx context.Context, f func()) bool {
	done := make(chan struct{})
	if !r.do(ctx, func() { f(); close(done) }) {
		return false
	}
	select {
	case <-done:
		return true
	case <-r.stopped:
		return false
	case <-ctx.Done():
		return false
	}
}

// apply carries out the engine's decisions: persist, notify agents, publish.
func (r *router) apply(effects []route.Effect, born time.Time) {
	for _, e := range effects {
		switch e.Kind {
		case route.Assigned:
			r.n.metrics.assigned.Inc()
			r.saveConv(e.Phone)
			if s := r.sessions[e.Agent]; s != nil {
				r.sendAssigned(s, e.Phone, born)
			}
			if r.announces(e.Agent) {
				r.n.publishAsync(keyAssigned(e.Agent), assignmentEvent{Agent: e.Agent, Phone: e.Phone, At: r.n.now().UnixMilli()})
			}
		case route.Released:
			r.saveConv(e.Phone)
			if s := r.sessions[e.Agent]; s != nil {
				s.enqueue(protocol.Frame{Type: protocol.TypeReleased, Phone: e.Phone, Reason: e.Reason}, time.Time{})
			} else if !r.engine.LoadOf(e.Agent).Online {
				// Connected nowhere (in cluster mode every node agrees).
				r.lost[e.Agent] = append(r.lost[e.Agent], e)
			}
			if r.announces(e.Agent) {
				r.n.publishAsync(keyReleased(e.Agent), assignmentEvent{Agent: e.Agent, Phone: e.Phone, Reason: e.Reason, At: r.n.now().UnixMilli()})
			}
		}
	}
	r.publishLoad()
}

// announces reports whether this node publishes conv.* events for agent:
// always in single-node mode; in cluster mode, where every node makes the
// same decision, only the node hosting the agent's session does.
func (r *router) announces(agent string) bool {
	return r.n.cluster == nil || r.sessions[agent] != nil
}

func (r *router) saveConv(phone string) {
	if r.n.cluster != nil {
		// Written with the next checkpoint, together with the log offset.
		r.n.cluster.dirty[phone] = true
		return
	}
	c := r.engine.Conversation(phone)
	st := store.ConvState{Phone: c.Phone, Agent: c.Agent, LastAgent: c.LastAgent, Waiting: c.Waiting, WaitSeq: c.WaitSeq}
	select {
	case r.persist <- st:
	default:
		// The disk is far behind; wait rather than drop routing state.
		r.persist <- st
	}
}

func (r *router) sendAssigned(s *session, phone string, born time.Time) {
	list, _, err := r.n.store.History(phone, "", r.n.opts.HistoryOnAssign)
	if err != nil {
		r.log.Error("history for assignment", "phone", phone, "err", err)
	}
	s.enqueue(protocol.Frame{Type: protocol.TypeAssigned, Phone: phone, List: list}, born)
}

// arrive handles a stored inbound message (single-node mode): its place in
// the waiting line is the one the store gave it.
func (r *router) arrive(m protocol.Message, born time.Time) {
	if r.engine.Owner(m.Phone) != "" {
		r.arriveAt(m, 0, born, r.n.now())
		return
	}
	seq := r.maxSeq + 1
	if st, err := r.n.store.ConvState(m.Phone); err == nil && st.Waiting && st.WaitSeq > 0 {
		seq = st.WaitSeq
	}
	if seq > r.maxSeq {
		r.maxSeq = seq
	}
	r.arriveAt(m, seq, born, r.n.now())
}

// arriveAt routes an inbound message that has arrival order seq.
func (r *router) arriveAt(m protocol.Message, seq uint64, born, now time.Time) {
	if owner := r.engine.Owner(m.Phone); owner != "" {
		if s := r.sessions[owner]; s != nil {
			s.enqueue(protocol.Frame{Type: protocol.TypeUpdate, Phone: m.Phone, List: []protocol.Message{m}}, born)
		}
		return
	}
	wasWaiting := r.engine.IsWaiting(m.Phone)
	effects := r.engine.Arrive(m.Phone, seq, now)
	if !wasWaiting && r.engine.IsWaiting(m.Phone) {
		r.saveConv(m.Phone)
	}
	r.apply(effects, born)
}

// outbound tells the owner of a conversation about a stored reply.
func (r *router) outbound(m protocol.Message) {
	target := r.engine.Owner(m.Phone)
	if target == "" {
		target = m.Agent
	}
	if s := r.sessions[target]; s != nil {
		s.enqueue(protocol.Frame{Type: protocol.TypeUpdate, Phone: m.Phone, List: []protocol.Message{m}}, time.Time{})
	}
}

// status tells the reply's author (or the conversation's owner) about a
// delivery status change.
func (r *router) status(m protocol.Message, detail string) {
	f := protocol.Frame{Type: protocol.TypeStatus, Phone: m.Phone, ID: m.ID, Status: m.Status, Text: detail}
	sent := map[string]bool{}
	for _, a := range []string{m.Agent, r.engine.Owner(m.Phone)} {
		if s := r.sessions[a]; s != nil && !sent[a] {
			sent[a] = true
			s.enqueue(f, time.Time{})
		}
	}
}

// connect registers a new session; an older session of the same agent is
// closed. Conversations the agent still holds are sent again.
func (r *router) connect(s *session) {
	if old := r.sessions[s.agent]; old != nil {
		old.enqueue(protocol.Frame{Type: protocol.TypeAlert, Text: "Signed in from another place; this session is closed."}, time.Time{})
		old.close(websocket.ClosePolicyViolation, "replaced by a newer session")
	}
	if t := r.timers[s.agent]; t != nil {
		t.Stop()
		delete(r.timers, s.agent)
	}
	s.epoch = r.engine.Connect(s.agent, r.n.now())
	r.sessions[s.agent] = s
	r.n.metrics.agentsOnline.Set(int64(len(r.sessions)))
	s.enqueue(protocol.Frame{Type: protocol.TypeAlert, Text: "How can I help you?"}, time.Time{})
	r.tellQueue(s)
	r.tellLost(s.agent, s)
	for _, phone := range r.engine.Conversations(s.agent) {
		r.sendAssigned(s, phone, time.Time{})
	}
	r.publishPresence(s.agent, "connected")
}

// tellLost sends s (nil: the agent connected on another node) a released
// frame for each conversation agent lost while it was connected nowhere,
// and forgets them.
func (r *router) tellLost(agent string, s *session) {
	if s != nil {
		for _, e := range r.lost[agent] {
			if r.engine.Owner(e.Phone) != agent {
				s.enqueue(protocol.Frame{Type: protocol.TypeReleased, Phone: e.Phone, Reason: e.Reason}, time.Time{})
			}
		}
	}
	delete(r.lost, agent)
}

func (r *router) disconnect(s *session) {
	if r.sessions[s.agent] == s {
		delete(r.sessions, s.agent)
		r.n.metrics.agentsOnline.Set(int64(len(r.sessions)))
	}
	if r.engine.Disconnect(s.agent, s.epoch) {
		r.startGrace(s.agent, s.epoch)
	}
	if r.sessions[s.agent] == nil {
		r.publishPresence(s.agent, "gone")
	}
}

func (r *router) startGrace(agent string, epoch uint64) {
	if t := r.timers[agent]; t != nil {
		t.Stop()
	}
	r.timers[agent] = time.AfterFunc(r.n.opts.Grace, func() {
		r.do(context.Background(), func() {
			delete(r.timers, agent)
			if effects := r.engine.Expire(agent, epoch, r.n.now()); len(effects) > 0 {
				r.log.Info("grace period over: conversations requeued", "agent", agent, "effects", len(effects))
				r.apply(effects, time.Time{})
			}
		})
	})
}

func (r *router) available(s *session, capacity int) {
	if r.sessions[s.agent] != s {
		return
	}
	if capacity <= 0 {
		capacity = s.capacity
	}
	r.apply(r.engine.Available(s.agent, capacity, r.n.now()), time.Time{})
	r.publishPresence(s.agent, "available")
}

func (r *router) away(s *session) {
	if r.sessions[s.agent] != s {
		return
	}
	r.engine.Away(s.agent)
	r.publishPresence(s.agent, "away")
	r.loadDirty = true
}

func (r *router) publishPresence(agent, state string) {
	if r.n.cluster != nil {
		return // in cluster mode presence events are the routing inputs themselves
	}
	l := r.engine.LoadOf(agent)
	r.n.publishAsync(keyPresence(agent), presenceEvent{
		Agent: agent, Node: r.n.opts.Node, State: state,
		Capacity: l.Capacity, Load: l.Active, At: r.n.now().UnixMilli(),
	})
}

// publishLoad sets the agent and conversation gauges. It walks every agent,
// so the router calls it at most once per loadEvery, when something changed,
// never per routing decision.
func (r *router) publishLoad() {
	r.loadDirty = false
	var avail, busy, assigned int64
	for _, l := range r.engine.Loads() {
		assigned += int64(l.Active)
		if l.Online && l.Available && l.Active < l.Capacity {
			avail++
		} else if l.Online && l.Active > 0 {
			busy++
		}
	}
	r.n.metrics.agentsAvailable.Set(avail)
	r.n.metrics.agentsBusy.Set(busy)
	r.n.metrics.convAssigned.Set(assigned)
	r.n.metrics.convWaiting.Set(int64(r.engine.WaitingLen()))
}

// closeAll closes every session, for shutdown. Agents keep their
// conversations: another node, or this one restarted, gives them back.
func (r *router) closeAll() {
	for _, s := range r.sessions {
		s.enqueue(protocol.Frame{Type: protocol.TypeAlert, Text: "The switchboard is restarting; reconnecting shortly."}, time.Time{})
		s.close(websocket.CloseGoingAway, "server shutting down")
	}
}
