package switchboard

// This file holds the agent workflows of issue 18 that change routing —
// transfers, a supervisor's assignments and the answer timeout — and the
// supervisor's view. Each change is a route.* event in the log, decided by
// the engine when applied (route/flow.go), on one node and on many alike.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/route"
	"github.com/switchboard/switchboard/switchboard/store"
)

// supervisorName is the name a supervisor session goes by in logs and in
// the events it causes. Supervisors are not agents: they take no
// conversations and publish no presence.
const supervisorName = "supervisor"

// viewEvery is how often supervisor sessions get the live view.
const viewEvery = time.Second

// flowRouter is the router's state for this file, touched only by the
// router goroutine.
type flowRouter struct {
	// answers holds, per phone, the timer of the answer its agent owes.
	answers map[string]*answerTimer
	// supervisors are this node's supervisor sessions, by session id.
	supervisors map[string]*session
	viewAt      time.Time
	// answersOn: caught up with the log, the timers run. While replaying,
	// answers long overdue would each append a timeout at once, for
	// states the next entries change.
	answersOn bool
}

type answerTimer struct {
	owed route.Owed
	t    *time.Timer
}

// transfer accepts an agent's transfer: it takes effect (or is refused)
// when applied.
func (c *cluster) transfer(ctx context.Context, s *session, f protocol.Frame) error {
	ev := routeEvent{ID: c.store.NewID(), Agent: s.agent, Phone: f.Phone, To: f.To, Note: f.Note,
		Session: s.id, Node: c.node, Ref: f.Ref, At: c.now().UnixMilli()}
	return c.publish(ctx, keyTransfer(s.agent), ev)
}

// assign accepts a supervisor's assignment.
func (c *cluster) assign(ctx context.Context, s *session, f protocol.Frame) error {
	ev := routeEvent{ID: c.store.NewID(), Agent: f.To, Phone: f.Phone, To: f.To,
		Session: s.id, Node: c.node, Ref: f.Ref, At: c.now().UnixMilli()}
	return c.publish(ctx, keyAssign(f.To), ev)
}

// answerTimeout appends an answer timeout about o; false asks to retry.
func (c *cluster) answerTimeout(o route.Owed) bool {
	ev := routeEvent{ID: c.store.NewID(), Agent: o.Agent, Phone: o.Phone, Msg: o.Msg, Since: o.Since.UnixMilli(),
		By: c.node, At: c.now().UnixMilli()}
	if err := c.publish(c.ctx, keyTimeout(o.Phone), ev); err != nil && c.ctx.Err() == nil {
		c.log.Warn("publish answer timeout; retrying", "phone", o.Phone, "err", err)
		return false
	}
	return true
}

// routeFlow applies route.transfer, route.assign and route.timeout. Runs
// on the router goroutine; returns what to do after the run (storing a
// transfer's note).
func (c *cluster) routeFlow(r *router, kind string, ev *routeEvent, offset int64) (post []func()) {
	at := time.UnixMilli(ev.At)
	var effects []route.Effect
	var err error
	switch kind {
	case "transfer":
		if c.current[ev.Agent] != ev.Session {
			err = route.ErrNotHeld // from a connection that is no longer the agent's
			break
		}
		effects, err = r.engine.Transfer(ev.Agent, ev.Phone, ev.To, ev.Note, at)
		if err == nil {
			r.metrics.transfers.Inc()
			if strings.TrimSpace(ev.Note) != "" {
				post = append(post, func() { c.storeTransferNote(ev, offset) })
			}
		}
	case "assign":
		effects, err = r.engine.Assign(ev.Phone, ev.To, at)
	case "timeout":
		effects = r.engine.AnswerTimeout(route.Owed{Phone: ev.Phone, Agent: ev.Agent, Msg: ev.Msg, Since: time.UnixMilli(ev.Since)}, at)
		if len(effects) > 0 {
			r.metrics.answerTimeouts.Inc()
			c.log.Info("answer timeout: conversation moved", "phone", ev.Phone, "from", ev.Agent)
		}
	}
	if err != nil && ev.Node == c.node {
		r.refuse(ev, err)
	}
	r.apply(effects, time.Time{})
	return post
}

// storeTransferNote keeps the note of an applied transfer as an internal
// note in the conversation, authored by the sender, so that it is in the
// history and shown after a reconnect (the assigned frame's transfer field
// is only in the live frame). Every node stores it when it applies the
// transfer, with ids from the event, so replaying the entry stores it
// once.
func (c *cluster) storeTransferNote(ev *routeEvent, offset int64) {
	to := "to " + ev.To
	if ev.To == "" {
		to = "back to the waiting line"
	}
	item := store.LogItem{Reply: &store.Reply{
		ID: ev.ID, Phone: ev.Phone, Agent: ev.Agent, Ref: "transfer." + ev.ID, Text: "transferred " + to + ": " + ev.Note,
		Sent: time.UnixMilli(ev.At), LogPos: store.LogPos(c.gen, offset), Origin: ev.Node, Note: true,
	}}
	res, err := c.store.ApplyLog(store.WithoutSync(c.ctx), []store.LogItem{item})
	if err == nil && len(res) == 1 {
		err = res[0].Err
	}
	if err != nil {
		c.log.Error("store transfer note", "phone", ev.Phone, "from", ev.Agent, "err", err)
	}
}

// refuse tells the session that asked (on this node) why its transfer or
// assignment did not take effect.
func (r *router) refuse(ev *routeEvent, err error) {
	s := r.sessions[ev.Agent]
	if s == nil || s.id != ev.Session {
		s = r.supervisors[ev.Session]
	}
	if s == nil {
		return
	}
	code, text := protocol.CodeUnavailable, ev.To+" is not available with free capacity"
	switch {
	case errors.Is(err, route.ErrNotHeld):
		code, text = protocol.CodeNotAssigned, "conversation "+ev.Phone+" is not yours"
	case errors.Is(err, route.ErrNotWaiting):
		code, text = protocol.CodeNotFound, "conversation "+ev.Phone+" is not waiting for an agent"
	case ev.Session != "" && r.supervisors[ev.Session] != nil:
		text = ev.To + " is not connected"
	}
	s.enqueue(protocol.ErrorFrame(code, text, ev.Ref), time.Time{})
}

// armAnswer keeps phone's answer timer in line with the engine: running
// for the answer its agent owes, if any. Every node runs the timers; the
// first timeout applied decides, the others find the state changed.
func (r *router) armAnswer(phone string) {
	limit := r.answerTimeout
	if limit <= 0 || !r.answersOn {
		return
	}
	o, owed := r.engine.OwedOf(phone)
	cur := r.answers[phone]
	if cur != nil && owed && cur.owed == o {
		return
	}
	if cur != nil {
		cur.t.Stop()
		delete(r.answers, phone)
	}
	if !owed {
		return
	}
	at := &answerTimer{owed: o}
	r.answers[phone] = at
	at.t = time.AfterFunc(max(o.Since.Add(limit).Sub(r.now()), 0), func() { r.answerDue(at) })
}

// answerDue runs when an answer is overdue (outside the router): it
// appends the timeout and, should the answer still be owed a timeout
// later (no other agent was free), appends it again then.
func (r *router) answerDue(at *answerTimer) {
	again := r.answerTimeout
	if !r.answerOver(at.owed) {
		again = time.Second
	}
	r.do(context.Background(), func() { // ends when the router stops
		if r.answers[at.owed.Phone] == at {
			at.t = time.AfterFunc(again, func() { r.answerDue(at) })
		}
	})
}

// armAllAnswers starts the timers of every answer owed, once caught up
// with the log.
func (r *router) armAllAnswers() {
	r.answersOn = true
	for _, o := range r.engine.AllOwed() {
		r.armAnswer(o.Phone)
	}
}

// stopAnswers stops every answer timer (the router is stopping).
func (r *router) stopAnswers() {
	for _, a := range r.answers {
		a.t.Stop()
	}
}

// view is the supervisor's view of the cluster, from this node's engine:
// every node's engine holds the same state, so every node answers alike.
func (r *router) view() *protocol.QueueView {
	now := r.now()
	v := &protocol.QueueView{Waiting: []protocol.QueueWaiter{}, Agents: []protocol.QueueAgent{}}
	if r.engine.WaitingLen() > 0 {
		for i, w := range r.engine.WaitingSince() {
			ms := int64(0)
			if !w.Since.IsZero() {
				ms = max(now.Sub(w.Since).Milliseconds(), 0)
			}
			v.Waiting = append(v.Waiting, protocol.QueueWaiter{Phone: w.Phone, WaitingMs: ms, Position: i + 1})
		}
	}
	for _, l := range r.engine.Loads() {
		state := protocol.AgentOffline
		switch {
		case l.Online && l.Available:
			state = protocol.AgentAvailable
		case l.Online:
			state = protocol.AgentAway
		}
		convs := r.engine.Conversations(l.Agent)
		if convs == nil {
			convs = []string{}
		}
		v.Agents = append(v.Agents, protocol.QueueAgent{Name: l.Agent, State: state, Capacity: l.Capacity, Load: l.Active, Node: l.Node, Conversations: convs})
	}
	return v
}

// tickView sends supervisor sessions the live view, at most once per
// viewEvery (on the router's load tick).
func (r *router) tickView() {
	if len(r.supervisors) == 0 || r.now().Sub(r.viewAt) < viewEvery {
		return
	}
	r.viewAt = r.now()
	f := protocol.Frame{Type: protocol.TypeSupervisor, View: r.view()}
	for _, s := range r.supervisors {
		s.enqueue(f, time.Time{})
	}
}

// connectSupervisor registers a supervisor session: no log event, since
// watching changes nothing. It gets the view at once.
func (c *cluster) connectSupervisor(s *session) {
	s.id = c.store.NewID()
	c.router.call(c.ctx, func() {
		r := c.router
		r.supervisors[s.id] = s
		s.enqueue(protocol.Frame{Type: protocol.TypeAlert, Text: "Supervisor view."}, time.Time{})
		s.enqueue(protocol.Frame{Type: protocol.TypeSupervisor, View: r.view()}, time.Time{})
	})
}

// disconnectSupervisor forgets a supervisor session.
func (c *cluster) disconnectSupervisor(s *session) {
	c.router.call(context.Background(), func() { delete(c.router.supervisors, s.id) })
}

// handleQueue is GET /queue (admin): the supervisor's view as JSON.
func (n *Node) handleQueue(w http.ResponseWriter, r *http.Request) {
	var v *protocol.QueueView
	if !n.router.call(r.Context(), func() { v = n.router.view() }) {
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// handleFlow handles transfer and assign frames. A transfer is checked
// here only for what this agent can know (the conversation is its own);
// whether the receiver has room is decided when it is applied.
func (n *Node) handleFlow(ctx context.Context, s *session, f protocol.Frame) {
	var err error
	switch {
	case f.Type == protocol.TypeAssign && !s.supervisor:
		s.enqueue(protocol.ErrorFrame(protocol.CodeForbidden, "only a supervisor may assign conversations", f.Ref), time.Time{})
		return
	case f.Type == protocol.TypeAssign:
		err = n.cluster.assign(ctx, s, f)
	default:
		owner := ""
		n.router.call(ctx, func() { owner = n.router.engine.Owner(f.Phone) })
		if owner != s.agent {
			s.enqueue(protocol.ErrorFrame(protocol.CodeNotAssigned, "conversation "+f.Phone+" is not yours", f.Ref), time.Time{})
			return
		}
		if f.To == s.agent {
			s.enqueue(protocol.ErrorFrame(protocol.CodeInvalid, "to: the conversation is already yours", f.Ref), time.Time{})
			return
		}
		err = n.cluster.transfer(ctx, s, f)
	}
	if err != nil {
		n.log.Warn("publish "+f.Type, "agent", s.agent, "err", err)
		s.enqueue(protocol.ErrorFrame(protocol.CodeUnavailable, "the switchboard cannot reach its message broker; retry shortly", f.Ref), time.Time{})
	}
}
