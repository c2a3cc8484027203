package route

// This file holds the agent workflows of issue 18 that change routing:
// transfers, a supervisor's assignment and the answer timeout. Like the
// rest of the engine they are decided from the events and the times they
// carry, so every node that applies the same log decides the same.

import (
	"container/heap"
	"errors"
	"sort"
	"time"
)

// Refusals of Transfer and Assign.
var (
	ErrNotHeld     = errors.New("route: the conversation is not this agent's")
	ErrUnavailable = errors.New("route: the agent is not available with free capacity")
	ErrNotWaiting  = errors.New("route: the conversation is not waiting for an agent")
)

// flow is a conversation's state for transfers and the answer timeout.
type flow struct {
	// avoid is the agent that put it back in the line: it is not offered
	// to that agent again while it waits.
	avoid string
	// waitSince is when it started waiting (for the supervisor's view).
	waitSince time.Time
	// unanswered is its customer's oldest message not answered yet ("":
	// none); owed is the agent who owes the answer ("" while it waits)
	// and owedSince when that agent's clock started: the message's time,
	// or when the agent got the conversation if that is later.
	unanswered string
	owed       string
	owedSince  time.Time
}

// give hands waiting or transferred c to free agent a at now.
func (e *Engine) give(c *convState, a *agentState, now time.Time) {
	c.agent, c.lastAgent, c.avoid = a.name, a.name, ""
	if c.unanswered != "" {
		c.owed, c.owedSince = a.name, now
	}
	a.convs[c.phone] = struct{}{}
	a.lastAssn = now
	e.fix(a)
}

// unassigned records that c went back to the line at now.
func (c *convState) unassigned(now time.Time) {
	c.owed, c.owedSince = "", time.Time{}
	c.waitSince = now
}

// freeExcept returns the best free agent other than name, or nil. The
// second best of a binary heap is the better of the root's children.
func (e *Engine) freeExcept(name string) *agentState {
	h := e.freeAgents
	switch {
	case len(h) == 0:
		return nil
	case h[0].name != name:
		return h[0]
	case len(h) == 1:
		return nil
	case len(h) == 2 || h.Less(1, 2):
		return h[1]
	default:
		return h[2]
	}
}

// take removes phone from agent a (it holds it).
func (e *Engine) take(a *agentState, c *convState) {
	delete(a.convs, c.phone)
	e.fix(a)
	c.agent = ""
	c.lastAgent = a.name
	if !a.online && len(a.convs) == 0 {
		delete(e.agents, a.name)
	}
}

// Transfer gives phone, held by from, to agent to if to is available with
// free capacity (ErrUnavailable otherwise; ErrNotHeld when from does not
// hold it). With to "" it goes back to the waiting line at its original
// place, not to be offered to from again. from gets Released with reason
// ReasonTransferred; to gets Assigned with From and Note.
func (e *Engine) Transfer(from, phone, to, note string, now time.Time) ([]Effect, error) {
	c, ok := e.convs[phone]
	if !ok || c.agent != from || from == "" {
		return nil, ErrNotHeld
	}
	a := e.agents[from]
	var b *agentState
	if to != "" {
		if b = e.agents[to]; b == nil || !b.free() || to == from {
			return nil, ErrUnavailable
		}
	}
	e.take(a, c)
	effects := []Effect{{Kind: Released, Agent: from, Phone: phone, Reason: ReasonTransferred}}
	if b == nil {
		c.avoid = from
		c.waiting = true
		c.unassigned(now)
		heap.Push(&e.waiting, c) // c.seq is its original place
		return e.drain(now, effects), nil
	}
	e.give(c, b, now)
	effects = append(effects, Effect{Kind: Assigned, Agent: to, Phone: phone, From: from, Note: note})
	return e.drain(now, effects), nil
}

// Assign gives waiting phone to agent to, a supervisor's choice: out of
// line order, to any connected agent, available or away, even beyond its
// capacity (the capacity limits what the engine gives, not what a
// supervisor does). An agent not connected is ErrUnavailable.
func (e *Engine) Assign(phone, to string, now time.Time) ([]Effect, error) {
	c, ok := e.convs[phone]
	if !ok || !c.waiting {
		return nil, ErrNotWaiting
	}
	b := e.agents[to]
	if b == nil || !b.online {
		return nil, ErrUnavailable
	}
	heap.Remove(&e.waiting, c.qIdx)
	c.waiting = false
	e.give(c, b, now)
	return []Effect{{Kind: Assigned, Agent: to, Phone: phone}}, nil
}

// Inbound records that the customer of phone sent message id at the time
// at. Call it for every new inbound message, before Arrive.
func (e *Engine) Inbound(phone, id string, at time.Time) {
	c := e.conv(phone)
	if c.unanswered != "" {
		return // the oldest unanswered one counts
	}
	c.unanswered = id
	if c.agent != "" {
		c.owed, c.owedSince = c.agent, at
	}
}

// Answered records a reply in phone: nothing is unanswered any more.
func (e *Engine) Answered(phone string) {
	if c, ok := e.convs[phone]; ok {
		c.unanswered, c.owed, c.owedSince = "", "", time.Time{}
	}
}

// Owed is an answer an agent owes: Agent holds Phone, whose message Msg
// is unanswered since Since. An answer timeout is about exactly one Owed.
type Owed struct {
	Phone string    `json:"phone"`
	Agent string    `json:"agent"`
	Msg   string    `json:"msg"`
	Since time.Time `json:"since"`
}

// OwedOf returns the answer owed in phone, if an agent holds it with an
// unanswered message.
func (e *Engine) OwedOf(phone string) (Owed, bool) {
	c, ok := e.convs[phone]
	if !ok || c.owed == "" || c.owed != c.agent {
		return Owed{}, false
	}
	return Owed{Phone: phone, Agent: c.owed, Msg: c.unanswered, Since: c.owedSince}, true
}

// AllOwed returns every answer owed, sorted by phone.
func (e *Engine) AllOwed() []Owed {
	var out []Owed
	for p := range e.convs {
		if o, ok := e.OwedOf(p); ok {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Phone < out[j].Phone })
	return out
}

// AnswerTimeout applies an answer timeout about o (the caller's timer saw
// it overdue). If the conversation still owes exactly that answer (the same
// agent, message and start, to the millisecond: the log's resolution) and
// another agent is available with free capacity, it moves there: o.Agent
// gets Released with ReasonTimeout. Otherwise nothing changes, so a
// repeated or late timeout is harmless.
func (e *Engine) AnswerTimeout(o Owed, now time.Time) []Effect {
	cur, ok := e.OwedOf(o.Phone)
	if !ok || cur.Agent != o.Agent || cur.Msg != o.Msg || cur.Since.UnixMilli() != o.Since.UnixMilli() {
		return nil
	}
	b := e.freeExcept(o.Agent)
	if b == nil {
		return nil
	}
	c := e.convs[o.Phone]
	e.take(e.agents[o.Agent], c)
	e.give(c, b, now)
	effects := []Effect{
		{Kind: Released, Agent: o.Agent, Phone: o.Phone, Reason: ReasonTimeout},
		{Kind: Assigned, Agent: b.name, Phone: o.Phone},
	}
	return e.drain(now, effects)
}

// Waiter is one conversation in the waiting line.
type Waiter struct {
	Phone string
	Since time.Time // when it started waiting (log time)
}

// WaitingSince returns the waiting line, oldest first, with when each
// started waiting.
func (e *Engine) WaitingSince() []Waiter {
	phones := e.Waiting()
	out := make([]Waiter, len(phones))
	for i, p := range phones {
		out[i] = Waiter{Phone: p, Since: e.convs[p].waitSince}
	}
	return out
}

// FlowSnapshot is the persisted form of one conversation's flow state
// (see SnapshotFlows); times are Unix milliseconds.
type FlowSnapshot struct {
	Phone      string `json:"phone"`
	Avoid      string `json:"avoid,omitempty"`
	WaitSince  int64  `json:"waitSince,omitempty"`
	Unanswered string `json:"unanswered,omitempty"`
	Owed       string `json:"owed,omitempty"`
	OwedSince  int64  `json:"owedSince,omitempty"`
}

// SnapshotFlows returns the flow state of every conversation that has
// one, sorted by phone. Only waiting and held conversations have one, so
// it stays as small as the work in hand.
func (e *Engine) SnapshotFlows() []FlowSnapshot {
	var out []FlowSnapshot
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	for _, c := range e.convs {
		if c.flow == (flow{}) {
			continue
		}
		out = append(out, FlowSnapshot{c.phone, c.avoid, ms(c.waitSince), c.unanswered, c.owed, ms(c.owedSince)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Phone < out[j].Phone })
	return out
}

// RestoreFlows sets the flow states snapshotted. Call it after Restore.
func (e *Engine) RestoreFlows(list []FlowSnapshot) {
	t := func(ms int64) time.Time {
		if ms == 0 {
			return time.Time{}
		}
		return time.UnixMilli(ms)
	}
	for _, s := range list {
		c := e.conv(s.Phone)
		c.flow = flow{avoid: s.Avoid, waitSince: t(s.WaitSince), unanswered: s.Unanswered, owed: s.Owed, owedSince: t(s.OwedSince)}
	}
}
