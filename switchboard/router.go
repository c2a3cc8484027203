package switchboard

import (
	"context"
	"log/slog"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/route"
)

// loadEvery is how often the router refreshes its load gauges.
const loadEvery = 500 * time.Millisecond

// router owns the routing engine, the live agent sessions and the grace
// timers. All of them are touched only by the router goroutine (the
// sessions and timers only by this file's methods; the applier's route*
// functions drive the engine from inside router.call): other
// goroutines hand it work with do (fire and forget) or call (wait for the
// answer), so routing decisions are serialized and capacity can never be
// exceeded by concurrent arrivals.
type router struct {
	routerDeps
	log      *slog.Logger
	engine   *route.Engine
	sessions map[string]*session
	timers   map[string]*time.Timer
	// lost holds, per agent, the conversations taken from it while it was
	// offline (its grace period ran out). Its client still shows them, so
	// they are sent as released when it connects again.
	lost map[string][]route.Effect
	// loadDirty says the load gauges are stale.
	loadDirty  bool
	queue      waitLine // what agents last heard of the waiting line (queue.go)
	flowRouter          // answer timers and supervisor sessions (flow.go)

	// What the applier gives the router, set once by newCluster: each
	// appends an event to the log, outside the router goroutine.
	//
	// graceOver appends the expiry of agent's grace period for epoch to
	// the log; false asks to try again (cluster.expire).
	graceOver func(agent string, epoch uint64) bool
	// reannounce appends the connection of a live local session again
	// (cluster.reannounce).
	reannounce func(s *session)
	// answerOver appends an answer timeout; false asks to try again
	// (cluster.answerTimeout).
	answerOver func(o route.Owed) bool
	// changed marks a conversation's routing state for the next
	// checkpoint (cluster.dirty); called on the router goroutine, inside
	// the applier's router.call.
	changed func(phone string)

	work    chan func()
	stopped chan struct{}
}

// routerDeps is what the router takes from the node: settings, clock,
// metrics, the store reads it answers agents from, and the announcement
// of assignments (conv.* events). No *Node: the router sees only these.
type routerDeps struct {
	capacity      int           // an agent's capacity when it names none
	history       int           // messages sent with an assignment
	grace         time.Duration // an agent's grace period after a disconnect
	answerTimeout time.Duration // 0: answers never time out
	now           func() time.Time
	metrics       *nodeMetrics
	store         routerStore
	announce      func(key string, v any) // publishes, fire and forget
}

// routerStore is the store as the router reads it.
type routerStore interface {
	History(phone, before string, limit int) ([]protocol.Message, bool, error)
	Contact(phone string) (protocol.Contact, bool, error)
	CannedReplies() ([]protocol.CannedReply, error)
}

func newRouter(deps routerDeps, log *slog.Logger) *router {
	return &router{
		routerDeps: deps,
		log:        log,
		engine:     route.New(deps.capacity),
		sessions:   make(map[string]*session),
		timers:     make(map[string]*time.Timer),
		lost:       make(map[string][]route.Effect),
		flowRouter: flowRouter{
			answers:     make(map[string]*answerTimer),
			supervisors: make(map[string]*session),
		},
		work:    make(chan func(), 4096),
		stopped: make(chan struct{}),
	}
}

// run processes work until ctx is done. Routing state reaches the disk
// with the applier's checkpoints (checkpoint.go), never from here.
func (r *router) run(ctx context.Context) {
	defer close(r.stopped)
	defer func() {
		for _, t := range r.timers {
			t.Stop()
		}
		r.stopAnswers()
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
			r.tickColleagues()
			r.tickView()
		case <-ctx.Done():
			return
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
			r.metrics.assigned.Inc()
			r.saveConv(e.Phone)
			if s := r.sessions[e.Agent]; s != nil {
				r.sendAssigned(s, e.Phone, born, e)
			}
			r.armAnswer(e.Phone)
			if r.announces(e.Agent) {
				r.announce(keyAssigned(e.Agent), assignmentEvent{Agent: e.Agent, Phone: e.Phone, At: r.now().UnixMilli()})
			}
		case route.Released:
			r.saveConv(e.Phone)
			r.armAnswer(e.Phone)
			if s := r.sessions[e.Agent]; s != nil {
				s.enqueue(protocol.Frame{Type: protocol.TypeReleased, Phone: e.Phone, Reason: e.Reason}, time.Time{})
			} else if !r.engine.LoadOf(e.Agent).Online {
				// Connected nowhere (every node agrees).
				r.lost[e.Agent] = append(r.lost[e.Agent], e)
			}
			if r.announces(e.Agent) {
				r.announce(keyReleased(e.Agent), assignmentEvent{Agent: e.Agent, Phone: e.Phone, Reason: e.Reason, At: r.now().UnixMilli()})
			}
		}
	}
	r.loadDirty = true // the gauges follow within loadEvery (publishLoad)
}

// announces reports whether this node publishes conv.* events for agent:
// every node makes the same decision, and the node hosting the agent's
// session announces it (an expiry's losses are announced by the node whose
// expiry took effect, apply.go).
func (r *router) announces(agent string) bool {
	return r.sessions[agent] != nil
}

func (r *router) saveConv(phone string) {
	// Written with the next checkpoint, together with the log offset.
	r.changed(phone)
}

// sendAssigned sends s the assigned frame for phone; e is the effect
// that assigned it (a transfer's note), zero when it is sent again.
func (r *router) sendAssigned(s *session, phone string, born time.Time, e route.Effect) {
	list, _, err := r.store.History(phone, "", r.history)
	if err != nil {
		r.log.Error("history for assignment", "phone", phone, "err", err)
	}
	f := protocol.Frame{Type: protocol.TypeAssigned, Phone: phone, List: list, Contact: r.contactOf(phone)}
	if e.From != "" {
		f.Transfer = &protocol.Transfer{From: e.From, Note: e.Note}
	}
	s.enqueue(f, born)
}

// arriveAt routes an inbound message applied from the log: its arrival
// order seq is its log offset + 1.
func (r *router) arriveAt(m protocol.Message, seq uint64, born, now time.Time) {
	r.engine.Inbound(m.Phone, m.ID, now)
	defer r.armAnswer(m.Phone)
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
	if m.Direction == protocol.Out { // a reply to the customer, not an internal note
		r.engine.Answered(m.Phone)
		r.armAnswer(m.Phone)
	}
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

// publishLoad sets the agent and conversation gauges. It walks every agent,
// so the router calls it at most once per loadEvery, when something changed,
// never per routing decision.
func (r *router) publishLoad() {
	r.loadDirty = false
	var avail, busy, assigned int64
	r.engine.EachLoad(func(l route.Load) {
		assigned += int64(l.Active)
		if l.Online && l.Available && l.Active < l.Capacity {
			avail++
		} else if l.Online && l.Active > 0 {
			busy++
		}
	})
	r.metrics.agentsAvailable.Set(avail)
	r.metrics.agentsBusy.Set(busy)
	r.metrics.convAssigned.Set(assigned)
	r.metrics.convWaiting.Set(int64(r.engine.WaitingLen()))
}

// closeAll closes every session, for shutdown. Agents keep their
// conversations: another node, or this one restarted, gives them back.
func (r *router) closeAll() {
	for _, s := range r.sessions {
		s.enqueue(protocol.Frame{Type: protocol.TypeAlert, Text: "The switchboard is restarting; reconnecting shortly."}, time.Time{})
		s.close(websocket.CloseGoingAway, "server shutting down")
	}
}

// attach applies an agent's connection (session id, connection epoch): s
// is this node's session for it, or nil when another node hosts it. The
// hosting node starts using the session; every node closes an older
// session of the same agent it hosts.
func (r *router) attach(agent, id string, epoch uint64, s *session, own bool) {
	r.stopGrace(agent)
	old := r.sessions[agent]
	if old != nil && old != s && old.id != id && own && s == nil {
		// A connection of this node that is gone here (re-announced after
		// the node was declared dead, it reached the log after the live
		// session that followed it): the live session says again that it
		// is connected, so that the log, and every node, ends with it.
		r.reannounce(old)
		return
	}
	if old != nil && old != s && old.id != id {
		old.enqueue(protocol.Frame{Type: protocol.TypeAlert, Text: "Signed in from another place; this session is closed."}, time.Time{})
		old.close(websocket.ClosePolicyViolation, protocol.CloseReplaced)
		delete(r.sessions, agent)
	}
	if s == nil {
		if old != nil && old.id == id {
			s = old // re-asserted after this node was thought dead
		} else {
			r.tellLost(agent, nil) // the node hosting it tells it
			r.metrics.agentsOnline.Set(int64(len(r.sessions)))
			return
		}
	}
	r.tellLost(agent, s)
	s.epoch = epoch
	r.sessions[agent] = s
	r.tellQueue(s)
	r.tellCanned(s)
	r.metrics.agentsOnline.Set(int64(len(r.sessions)))
	for _, phone := range r.engine.Conversations(agent) {
		r.sendAssigned(s, phone, time.Time{}, route.Effect{})
	}
}

// forget drops a closed local session.
func (r *router) forget(s *session) {
	if r.sessions[s.agent] == s {
		delete(r.sessions, s.agent)
		r.metrics.agentsOnline.Set(int64(len(r.sessions)))
	}
}

// hosts reports whether this node hosts agent's session.
func (r *router) hosts(agent string) bool { return r.sessions[agent] != nil }

// localSessions returns the sessions this node hosts.
func (r *router) localSessions() []*session {
	list := make([]*session, 0, len(r.sessions))
	for _, s := range r.sessions {
		list = append(list, s)
	}
	return list
}

// startGrace starts agent's grace period for connection epoch: when it
// ends, graceOver is called (outside the router goroutine) to append the
// expiry to the log, where it takes effect.
func (r *router) startGrace(agent string, epoch uint64) {
	r.stopGrace(agent)
	r.timers[agent] = time.AfterFunc(r.grace, func() {
		if !r.graceOver(agent, epoch) {
			r.do(context.Background(), func() { r.startGrace(agent, epoch) }) // retried a grace period later
		}
	})
}

// stopGrace stops agent's grace timer, if any.
func (r *router) stopGrace(agent string) {
	if t := r.timers[agent]; t != nil {
		t.Stop()
		delete(r.timers, agent)
	}
}

// inGrace reports whether agent's grace timer runs.
func (r *router) inGrace(agent string) bool { return r.timers[agent] != nil }
