package switchboard

import (
	"slices"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/route"
)

// queueEvery is the most often a node tells its agents about the waiting
// line (protocol.TypeQueue).
const queueEvery = time.Second

// waitLine is what the node last told its agents about the conversations
// waiting for an agent. It belongs to the router goroutine. Every node's
// engine holds the same waiting line (in cluster mode it is built from the
// one log), so each node tells only its own agents, and nothing about the
// line is published.
//
// The wait of a conversation is measured from when this node first saw it
// waiting (at most loadEvery late); after a restart, from the restart.
type waitLine struct {
	since  map[string]time.Time // waiting phone → first seen waiting
	n      int                  // the count last sent
	head   string               // the oldest waiting phone last sent
	sentAt time.Time
	free   []string // agents available with free capacity last told (colleagues)
	freeAt time.Time
}

// refresh records the line now (phones oldest first) and reports whether
// it differs from what was last sent: another count or another oldest.
func (w *waitLine) refresh(phones []string, now time.Time) bool {
	if w.since == nil {
		w.since = make(map[string]time.Time)
	}
	for _, p := range phones {
		if _, ok := w.since[p]; !ok {
			w.since[p] = now
		}
	}
	if len(w.since) > len(phones) { // some were answered
		in := make(map[string]bool, len(phones))
		for _, p := range phones {
			in[p] = true
		}
		for p := range w.since {
			if !in[p] {
				delete(w.since, p)
			}
		}
	}
	return len(phones) != w.n || oldestOf(phones) != w.head
}

// due refreshes the line and reports whether agents should hear about it
// now: it changed, and the last frame is at least queueEvery old.
func (w *waitLine) due(phones []string, now time.Time) bool {
	return w.refresh(phones, now) && now.Sub(w.sentAt) >= queueEvery
}

// sent records that agents were told about phones at now.
func (w *waitLine) sent(phones []string, now time.Time) {
	w.n, w.head, w.sentAt = len(phones), oldestOf(phones), now
}

func oldestOf(phones []string) string {
	if len(phones) == 0 {
		return ""
	}
	return phones[0]
}

// frame is the queue frame for the line as last refreshed.
func (w *waitLine) frame(phones []string, now time.Time) protocol.Frame {
	f := protocol.Frame{Type: protocol.TypeQueue, Waiting: len(phones)}
	if len(phones) > 0 {
		f.LongestWaitMs = max(now.Sub(w.since[phones[0]]).Milliseconds(), 0)
	}
	return f
}

// waiting returns the waiting line, oldest first, without sorting an
// empty one.
func (r *router) waiting() []string {
	if r.engine.WaitingLen() == 0 {
		return nil
	}
	return r.engine.Waiting()
}

// tickQueue runs on every load tick of the router: when the line changed
// and the last queue frame is a second old, every agent of this node gets
// the new one.
func (r *router) tickQueue() {
	now := r.now()
	phones := r.waiting()
	if !r.queue.due(phones, now) {
		return
	}
	f := r.queue.frame(phones, now)
	r.queue.sent(phones, now)
	r.broadcast(f)
}

// broadcast queues f for every session of this node, encoded once.
func (r *router) broadcast(f protocol.Frame) {
	data, err := f.MarshalJSON()
	if err != nil {
		r.log.Error("encode frame", "type", f.Type, "err", err)
		return
	}
	for _, s := range r.sessions {
		s.enqueueRaw(data, time.Time{})
	}
}

// maxColleagues bounds a colleagues frame: the first free agents by name.
// A larger team types the colleague's name (the transfer is decided where
// it is applied); without a bound every agent of a team of N would get N
// names whenever one of them became free or busy, N² in all.
const maxColleagues = 50

// freeAgents are the agents the engine has available with free capacity,
// sorted: whom a conversation can be transferred to now.
func (r *router) freeAgents() []string {
	var free []string
	r.engine.EachLoad(func(l route.Load) {
		if l.Online && l.Available && l.Active < l.Capacity {
			free = append(free, l.Agent)
		}
	})
	slices.Sort(free)
	return free
}

// colleagues is the colleagues frame for agent: the first maxColleagues
// free agents but itself.
func colleagues(free []string, agent string) protocol.Frame {
	f := protocol.Frame{Type: protocol.TypeColleagues, Agents: make([]string, 0, min(len(free), maxColleagues))}
	for _, a := range free {
		if len(f.Agents) == maxColleagues {
			break
		}
		if a != agent {
			f.Agents = append(f.Agents, a)
		}
	}
	return f
}

// tickColleagues runs on the load tick beside tickQueue: when the free
// agents changed and the last colleagues frames are a second old, every
// agent of this node hears whom it can transfer to. Like the waiting
// line, this comes from the engine every node holds alike. Agents that
// are not among the names sent all get the same frame, encoded once.
func (r *router) tickColleagues() {
	now := r.now()
	if len(r.sessions) == 0 || now.Sub(r.queue.freeAt) < queueEvery {
		return
	}
	free := r.freeAgents()
	if slices.Equal(free, r.queue.free) {
		return
	}
	r.queue.free, r.queue.freeAt = free, now
	common := colleagues(free, "")
	data, err := common.MarshalJSON()
	if err != nil {
		r.log.Error("encode frame", "type", common.Type, "err", err)
		return
	}
	for _, s := range r.sessions {
		if slices.Contains(common.Agents, s.agent) {
			s.enqueue(colleagues(free, s.agent), time.Time{})
		} else {
			s.enqueueRaw(data, time.Time{})
		}
	}
}

// tellQueue gives an agent that just connected the waiting line and the
// colleagues last told (tickColleagues follows with a change within
// queueEvery): a connect does not walk every agent.
func (r *router) tellQueue(s *session) {
	now := r.now()
	phones := r.waiting()
	r.queue.refresh(phones, now)
	s.enqueue(r.queue.frame(phones, now), time.Time{})
	s.enqueue(colleagues(r.queue.free, s.agent), time.Time{})
}
