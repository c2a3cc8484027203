// Package route decides which agent handles which conversation.
//
// Engine is a deterministic state machine: its decisions depend only on the
// sequence of events fed to it (arrivals, presence changes, releases, grace
// expiries) and the times carried by those events, never on a wall clock or
// on randomness. Replaying the same events gives the same assignments, which
// is what lets a node rebuild its routing state after a restart and lets
// several nodes that consume one ordered log agree without talking.
//
// Rules:
//   - A conversation goes to its previous agent if that agent is available
//     with free capacity, else to the available agent with the lowest load;
//     ties go to the agent idle longest (longest since its last assignment),
//     then to the smaller name.
//   - When no agent is free, conversations wait in arrival order and are
//     offered, oldest first, as soon as capacity frees up.
//   - A conversation has at most one agent; an agent never holds more than
//     its capacity of conversations given to it while available (lowering
//     the capacity evicts nothing; a supervisor's Assign may go beyond it).
//   - Transfers, assignments and answer timeouts: flow.go.
//   - An agent that disconnects keeps its conversations until Expire is
//     called for that connection (the grace period is the caller's timer);
//     then they are requeued in their original arrival order.
//
// Engine is not safe for concurrent use: one goroutine owns it.
package route

import (
	"container/heap"
	"sort"
	"time"
)

// DefaultCapacity is used when neither the agent nor its token names one.
const DefaultCapacity = 3

// Kind says what an Effect is.
type Kind int

// Effect kinds.
const (
	// Assigned: Phone now belongs to Agent.
	Assigned Kind = iota + 1
	// Released: Phone left Agent (Reason says why).
	Released
)

// Release reasons, as sent to agents in "released" frames.
const (
	ReasonReleased = "released" // the agent released it
	ReasonTimeout  = "timeout"  // the agent stayed disconnected past the grace period, or left a message unanswered past the answer timeout
	// ReasonTransferred: the agent (or a supervisor) gave it to another
	// agent or back to the waiting line (flow.go).
	ReasonTransferred = "transferred"
)

// Effect is one decision the caller must carry out (persist, notify).
type Effect struct {
	Kind   Kind
	Agent  string
	Phone  string
	Reason string
	// Assigned by a transfer: the agent it came from and its note.
	From, Note string
}

// Conversation is the routing state of one conversation, as persisted.
type Conversation struct {
	Phone     string
	Agent     string // current agent, "" when none
	LastAgent string
	Waiting   bool
	WaitSeq   uint64 // arrival order; smaller waited first
}

type agentState struct {
	name      string
	node      string // node hosting its connection (cluster mode)
	online    bool
	available bool
	capacity  int
	epoch     uint64
	convs     map[string]struct{}
	lastAssn  time.Time // when it last got a conversation, or first came online
	heapIdx   int       // index in the free heap, -1 when not in it
}

func (a *agentState) free() bool {
	return a.online && a.available && len(a.convs) < a.capacity
}

type convState struct {
	phone     string
	agent     string
	lastAgent string
	waiting   bool
	seq       uint64
	qIdx      int // index in the waiting queue, -1 when not in it
	flow          // transfers and the answer timeout (flow.go)
}

// Engine holds the routing state. The zero value is not usable; call New.
type Engine struct {
	defaultCapacity int
	agents          map[string]*agentState
	convs           map[string]*convState
	waiting         waitQueue
	freeAgents      freeHeap
}

// New returns an empty engine. defaultCapacity applies to agents that do not
// declare one (DefaultCapacity when ≤ 0).
func New(defaultCapacity int) *Engine {
	if defaultCapacity <= 0 {
		defaultCapacity = DefaultCapacity
	}
	return &Engine{
		defaultCapacity: defaultCapacity,
		agents:          make(map[string]*agentState),
		convs:           make(map[string]*convState),
	}
}

// Restore loads persisted conversation states, typically at start. Agents
// that held conversations are known but offline (as if they had just
// disconnected): the caller starts their grace timers with the epochs
// returned. Waiting conversations queue in WaitSeq order. Restore emits no
// effects; call Drain after presence is known.
func (e *Engine) Restore(convs []Conversation, now time.Time) map[string]uint64 {
	epochs := make(map[string]uint64)
	for _, c := range convs {
		cs := e.conv(c.Phone)
		cs.lastAgent = c.LastAgent
		cs.seq = c.WaitSeq
		if c.Agent != "" {
			a := e.agent(c.Agent, now)
			cs.agent = a.name
			a.convs[cs.phone] = struct{}{}
			epochs[a.name] = a.epoch
		} else if c.Waiting {
			cs.waiting = true
			heap.Push(&e.waiting, cs)
		}
	}
	return epochs
}

// Adopt takes over the routing state c that phone had before the event log
// that feeds this engine was replaced (cluster mode: the broker lost it),
// as one event with arrival order seq. A phone this engine already knows
// keeps its state: events of the current log decided it. Otherwise:
//
//   - held by an agent: the agent keeps it. An agent this engine does not
//     know is added offline, at epoch 0, as after Restore: the caller starts
//     its grace timer. An agent that is online without room for it (its
//     capacity is full) does not get it: it waits, as below, with that agent
//     as its previous one;
//   - waiting: it waits, in order seq, and may be assigned at once;
//   - anything else adds nothing.
func (e *Engine) Adopt(c Conversation, seq uint64, now time.Time) []Effect {
	if _, known := e.convs[c.Phone]; known || (c.Agent == "" && !c.Waiting) {
		return nil
	}
	if c.Agent != "" {
		a, known := e.agents[c.Agent]
		if !known || !a.online || len(a.convs) < a.capacity {
			a = e.agent(c.Agent, now)
			cs := e.conv(c.Phone)
			cs.agent, cs.lastAgent = a.name, a.name
			a.convs[cs.phone] = struct{}{}
			e.fix(a)
			return []Effect{{Kind: Assigned, Agent: a.name, Phone: cs.phone}}
		}
		c.LastAgent = c.Agent
	}
	cs := e.conv(c.Phone)
	cs.lastAgent = c.LastAgent
	cs.waiting = true
	cs.seq = seq
	cs.waitSince = now
	heap.Push(&e.waiting, cs)
	return e.drain(now, nil)
}

// Owner returns the agent currently holding phone, or "".
func (e *Engine) Owner(phone string) string {
	if c, ok := e.convs[phone]; ok {
		return c.agent
	}
	return ""
}

// Conversations returns the phones agent holds, sorted.
func (e *Engine) Conversations(agent string) []string {
	a, ok := e.agents[agent]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(a.convs))
	for p := range a.convs {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Arrive records an inbound message for phone that got arrival order seq.
// A conversation with an agent stays with it; otherwise it waits and may be
// assigned at once.
func (e *Engine) Arrive(phone string, seq uint64, now time.Time) []Effect {
	c := e.conv(phone)
	if c.agent != "" || c.waiting {
		return nil
	}
	c.waiting = true
	c.seq = seq
	c.waitSince = now
	heap.Push(&e.waiting, c)
	return e.drain(now, nil)
}

// Connect records a new connection of agent and returns its epoch, which
// identifies this connection in Disconnect and Expire. A newer connection
// supersedes an older one. The agent is not available until Available.
func (e *Engine) Connect(agent string, now time.Time) uint64 {
	return e.ConnectOn(agent, "", now)
}

// ConnectOn is Connect for an agent connected to node (cluster mode).
func (e *Engine) ConnectOn(agent, node string, now time.Time) uint64 {
	a := e.agent(agent, now)
	a.node = node
	a.epoch++
	a.online = true
	a.available = false
	e.fix(a)
	return a.epoch
}

// Available marks agent ready for up to capacity conversations (the default
// capacity when capacity ≤ 0) and offers waiting conversations.
func (e *Engine) Available(agent string, capacity int, now time.Time) []Effect {
	a, ok := e.agents[agent]
	if !ok || !a.online {
		return nil
	}
	if capacity <= 0 {
		capacity = e.defaultCapacity
	}
	if !a.available {
		a.available = true
	}
	a.capacity = capacity
	e.fix(a)
	return e.drain(now, nil)
}

// Away stops new assignments to agent; it keeps its conversations.
func (e *Engine) Away(agent string) {
	if a, ok := e.agents[agent]; ok {
		a.available = false
		e.fix(a)
	}
}

// Disconnect records that connection epoch of agent closed. A stale epoch
// (a newer connection exists) is ignored. It reports whether the agent is
// now offline, in which case the caller starts the grace timer.
func (e *Engine) Disconnect(agent string, epoch uint64) bool {
	a, ok := e.agents[agent]
	if !ok || a.epoch != epoch || !a.online {
		return false
	}
	a.online = false
	a.available = false
	e.fix(a)
	if len(a.convs) == 0 {
		delete(e.agents, agent)
		return false
	}
	return true
}

// Expire ends the grace period of connection epoch of agent: if the agent is
// still offline with that epoch, its conversations are requeued in arrival
// order and offered to other agents.
func (e *Engine) Expire(agent string, epoch uint64, now time.Time) []Effect {
	a, ok := e.agents[agent]
	if !ok || a.online || a.epoch != epoch {
		return nil
	}
	var effects []Effect
	for _, p := range e.Conversations(agent) {
		c := e.convs[p]
		c.agent = ""
		c.lastAgent = agent
		c.waiting = true
		c.unassigned(now)
		heap.Push(&e.waiting, c)
		effects = append(effects, Effect{Kind: Released, Agent: agent, Phone: p, Reason: ReasonTimeout})
	}
	delete(e.agents, agent)
	return e.drain(now, effects)
}

// Release ends agent's handling of phone. It reports false (no effects)
// when phone is not the agent's.
func (e *Engine) Release(agent, phone string, now time.Time) ([]Effect, bool) {
	c, ok := e.convs[phone]
	if !ok || c.agent != agent {
		return nil, false
	}
	a := e.agents[agent]
	delete(a.convs, phone)
	e.fix(a)
	c.agent = ""
	c.lastAgent = agent
	c.flow = flow{} // idle: nothing waits for an answer
	effects := []Effect{{Kind: Released, Agent: agent, Phone: phone, Reason: ReasonReleased}}
	if a != nil && !a.online && len(a.convs) == 0 {
		delete(e.agents, agent)
	}
	return e.drain(now, effects), true
}

// Waiting returns the phones waiting for an agent, oldest first.
func (e *Engine) Waiting() []string {
	q := append(waitQueue(nil), e.waiting...)
	sort.Slice(q, func(i, j int) bool { return q.Less(i, j) })
	out := make([]string, len(q))
	for i, c := range q {
		out[i] = c.phone
	}
	return out
}

// Load describes one agent for metrics and presence.
type Load struct {
	Agent     string
	Online    bool
	Available bool
	Capacity  int
	Active    int
	Node      string // hosting its latest connection
}

// Loads returns every known agent's load, sorted by name.
func (e *Engine) Loads() []Load {
	out := make([]Load, 0, len(e.agents))
	for _, a := range e.agents {
		out = append(out, Load{a.name, a.online, a.available, a.capacity, len(a.convs), a.node})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Agent < out[j].Agent })
	return out
}

// EachLoad calls f with every agent's load, in no particular order: for
// totals, without the copy and sort of Loads.
func (e *Engine) EachLoad(f func(Load)) {
	for _, a := range e.agents {
		f(Load{a.name, a.online, a.available, a.capacity, len(a.convs), a.node})
	}
}

// LoadOf returns one agent's load.
func (e *Engine) LoadOf(agent string) Load {
	a, ok := e.agents[agent]
	if !ok {
		return Load{Agent: agent}
	}
	return Load{a.name, a.online, a.available, a.capacity, len(a.convs), a.node}
}

// drain offers waiting conversations, oldest first, while an agent is free.
// A conversation put back in the line by its agent is not offered to that
// agent again (flow.go): it waits on, in its place, while others go by.
func (e *Engine) drain(now time.Time, effects []Effect) []Effect {
	var passed []*convState
	for e.waiting.Len() > 0 && e.freeAgents.Len() > 0 {
		c := heap.Pop(&e.waiting).(*convState)
		a := e.freeAgents[0]
		if last, ok := e.agents[c.lastAgent]; ok && last.free() && last.name != c.avoid {
			a = last
		}
		if a.name == c.avoid {
			if a = e.freeExcept(c.avoid); a == nil {
				passed = append(passed, c)
				continue
			}
		}
		c.waiting = false
		e.give(c, a, now)
		effects = append(effects, Effect{Kind: Assigned, Agent: a.name, Phone: c.phone})
	}
	for _, c := range passed {
		heap.Push(&e.waiting, c)
	}
	return effects
}

func (e *Engine) agent(name string, now time.Time) *agentState {
	a, ok := e.agents[name]
	if !ok {
		a = &agentState{name: name, convs: make(map[string]struct{}), lastAssn: now, heapIdx: -1, capacity: e.defaultCapacity}
		e.agents[name] = a
	}
	return a
}

func (e *Engine) conv(phone string) *convState {
	c, ok := e.convs[phone]
	if !ok {
		c = &convState{phone: phone, qIdx: -1}
		e.convs[phone] = c
	}
	return c
}

// fix keeps a's membership and position in the free heap in line with its state.
func (e *Engine) fix(a *agentState) {
	switch {
	case a.free() && a.heapIdx < 0:
		heap.Push(&e.freeAgents, a)
	case a.free():
		heap.Fix(&e.freeAgents, a.heapIdx)
	case a.heapIdx >= 0:
		heap.Remove(&e.freeAgents, a.heapIdx)
	}
}

// freeHeap orders free agents: lowest load, then idle longest, then name.
type freeHeap []*agentState

func (h freeHeap) Len() int { return len(h) }
func (h freeHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if len(a.convs) != len(b.convs) {
		return len(a.convs) < len(b.convs)
	}
	if !a.lastAssn.Equal(b.lastAssn) {
		return a.lastAssn.Before(b.lastAssn)
	}
	return a.name < b.name
}
func (h freeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *freeHeap) Push(x any) {
	a := x.(*agentState)
	a.heapIdx = len(*h)
	*h = append(*h, a)
}
func (h *freeHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = nil
	a.heapIdx = -1
	*h = old[:len(old)-1]
	return a
}

// waitQueue orders waiting conversations by arrival.
type waitQueue []*convState

func (q waitQueue) Len() int { return len(q) }
func (q waitQueue) Less(i, j int) bool {
	if q[i].seq != q[j].seq {
		return q[i].seq < q[j].seq
	}
	return q[i].phone < q[j].phone
}
func (q waitQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].qIdx = i
	q[j].qIdx = j
}
func (q *waitQueue) Push(x any) {
	c := x.(*convState)
	c.qIdx = len(*q)
	*q = append(*q, c)
}
func (q *waitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	old[len(old)-1] = nil
	c.qIdx = -1
	*q = old[:len(old)-1]
	return c
}

// Conversation returns the routing state of phone, in the persisted form.
func (e *Engine) Conversation(phone string) Conversation {
	c, ok := e.convs[phone]
	if !ok {
		return Conversation{Phone: phone}
	}
	return Conversation{Phone: phone, Agent: c.agent, LastAgent: c.lastAgent, Waiting: c.waiting, WaitSeq: c.seq}
}

// IsWaiting reports whether phone waits for an agent.
func (e *Engine) IsWaiting(phone string) bool {
	c, ok := e.convs[phone]
	return ok && c.waiting
}

// WaitingLen returns how many conversations wait for an agent.
func (e *Engine) WaitingLen() int { return e.waiting.Len() }

// Epoch returns the current connection epoch of agent (0 when unknown).
func (e *Engine) Epoch(agent string) uint64 {
	if a, ok := e.agents[agent]; ok {
		return a.epoch
	}
	return 0
}

// OnlineOn returns the agents whose live connection is on node, sorted,
// with their epochs.
func (e *Engine) OnlineOn(node string) map[string]uint64 {
	out := map[string]uint64{}
	for _, a := range e.agents {
		if a.online && a.node == node {
			out[a.name] = a.epoch
		}
	}
	return out
}

// Offline returns the agents that hold conversations but have no live
// connection, with their epochs: each needs a grace timer.
func (e *Engine) Offline() map[string]uint64 {
	out := map[string]uint64{}
	for _, a := range e.agents {
		if !a.online {
			out[a.name] = a.epoch
		}
	}
	return out
}

// AgentSnapshot is the persisted form of one agent's routing state. With the
// conversation states it restores an Engine exactly (see RestoreAgents).
type AgentSnapshot struct {
	Name      string `json:"name"`
	Node      string `json:"node,omitempty"`
	Online    bool   `json:"online,omitempty"`
	Available bool   `json:"available,omitempty"`
	Capacity  int    `json:"capacity"`
	Epoch     uint64 `json:"epoch"`
	LastAssn  int64  `json:"lastAssn"` // Unix nanoseconds
}

// SnapshotAgents returns every agent's state, sorted by name.
func (e *Engine) SnapshotAgents() []AgentSnapshot {
	out := make([]AgentSnapshot, 0, len(e.agents))
	for _, a := range e.agents {
		out = append(out, AgentSnapshot{a.name, a.node, a.online, a.available, a.capacity, a.epoch, a.lastAssn.UnixNano()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// RestoreAgents sets agent states exactly as snapshotted. Call it after
// Restore: conversations already name their agents.
func (e *Engine) RestoreAgents(list []AgentSnapshot) {
	for _, s := range list {
		a := e.agent(s.Name, time.Unix(0, s.LastAssn))
		a.node, a.online, a.available, a.capacity, a.epoch = s.Node, s.Online, s.Available, s.Capacity, s.Epoch
		a.lastAssn = time.Unix(0, s.LastAssn)
		e.fix(a)
	}
}
