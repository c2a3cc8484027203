package loadgen

import (
	"sort"
	"sync"
	"time"
)

// ledger is the end-to-end accounting of one run: what was sent, what the
// node acknowledged, what agents saw and what reached the fake SMS API.
// Safe for concurrent use.
type ledger struct {
	mu      sync.Mutex
	in      map[int64]*inMsg
	replies map[int64]*reply
	errors  map[string]int64

	webhook  Recorder // intended send → 200
	delivery Recorder // intended send → frame at the agent
	replyLat Recorder // response frame written → CreateMessage at the fake API

	counts counts
}

// counts are the plain counters of a run.
type counts struct {
	sent, acked, failed         int64
	delivered                   int64 // distinct inbound messages seen by an agent
	deliveredTwice, redelivered int64
	dupSent, dupAcked           int64
	unknownSeen                 int64 // markers of this run that were never sent (should be 0)
	repliesSent, repliesAcked   int64
	repliesRefused, repliesAPI  int64
	statuses                    int64
	navSent, navAccepted        int64
	navUnsupported, navFailed   int64
	lastDelivery, lastAck       time.Time
}

type inMsg struct {
	sid, phone  string
	intended    time.Time
	acked       bool
	failed      bool
	firstAgent  string // "" until delivered
	updateSeen  int    // times seen in an update frame
	deliveredAt time.Time
}

type reply struct {
	agent, phone string
	sentAt       time.Time
	acked        bool
	refused      bool
	atAPI        int
}

func newLedger() *ledger {
	return &ledger{in: make(map[int64]*inMsg), replies: make(map[int64]*reply), errors: make(map[string]int64)}
}

func (l *ledger) errorf(kind string) {
	l.mu.Lock()
	l.errors[kind]++
	l.mu.Unlock()
}

func (l *ledger) sent(seq int64, sid, phone string, intended time.Time) {
	l.mu.Lock()
	l.in[seq] = &inMsg{sid: sid, phone: phone, intended: intended}
	l.counts.sent++
	l.mu.Unlock()
}

// answered records the node's answer to the first post of message seq.
func (l *ledger) answered(seq int64, ok bool, at time.Time) {
	l.mu.Lock()
	m := l.in[seq]
	if ok {
		m.acked = true
		l.counts.acked++
		if at.After(l.counts.lastAck) {
			l.counts.lastAck = at
		}
	} else {
		m.failed = true
		l.counts.failed++
	}
	intended := m.intended
	l.mu.Unlock()
	if ok {
		l.webhook.Record(at.Sub(intended))
	}
}

func (l *ledger) duplicate(ok bool) {
	l.mu.Lock()
	l.counts.dupSent++
	if ok {
		l.counts.dupAcked++
	}
	l.mu.Unlock()
}

// seen records that agent received inbound message seq at time at, in an
// update frame (update) or an assigned frame's history. It reports whether
// this was the message's first delivery to any agent.
//
// A message is delivered once when it first reaches an agent. It may come
// again in a later assigned history (reassignment: fine); in an update frame
// to the agent that already had it (an echo of an assigned history that
// raced the update: counted, harmless); or in an update frame to a second
// agent: two agents were given the same new message, counted as delivered
// twice.
func (l *ledger) seen(seq int64, agent string, update bool, at time.Time) bool {
	l.mu.Lock()
	m := l.in[seq]
	if m == nil {
		l.counts.unknownSeen++
		l.mu.Unlock()
		return false
	}
	if update {
		m.updateSeen++
	}
	if m.firstAgent == "" {
		m.firstAgent, m.deliveredAt = agent, at
		l.counts.delivered++
		if at.After(l.counts.lastDelivery) {
			l.counts.lastDelivery = at
		}
		intended := m.intended
		l.mu.Unlock()
		l.delivery.Record(at.Sub(intended))
		return true
	}
	if update {
		if agent != m.firstAgent {
			l.counts.deliveredTwice++
		} else {
			l.counts.redelivered++
		}
	}
	l.mu.Unlock()
	return false
}

func (l *ledger) replySent(seq int64, agent, phone string, at time.Time) {
	l.mu.Lock()
	l.replies[seq] = &reply{agent: agent, phone: phone, sentAt: at}
	l.counts.repliesSent++
	l.mu.Unlock()
}

func (l *ledger) replyAnswered(seq int64, acked bool) {
	l.mu.Lock()
	if r := l.replies[seq]; r != nil && !r.acked && !r.refused {
		if acked {
			r.acked = true
			l.counts.repliesAcked++
		} else {
			r.refused = true
			l.counts.repliesRefused++
		}
	}
	l.mu.Unlock()
}

// replyAtAPI records that the fake SMS API received reply seq.
func (l *ledger) replyAtAPI(seq int64, at time.Time) {
	l.mu.Lock()
	r := l.replies[seq]
	if r == nil {
		l.counts.unknownSeen++
		l.mu.Unlock()
		return
	}
	r.atAPI++
	first := r.atAPI == 1
	if first {
		l.counts.repliesAPI++
	}
	sentAt := r.sentAt
	l.mu.Unlock()
	if first {
		l.replyLat.Record(at.Sub(sentAt))
	}
}

func (l *ledger) status() {
	l.mu.Lock()
	l.counts.statuses++
	l.mu.Unlock()
}

func (l *ledger) nav(code int) {
	l.mu.Lock()
	l.counts.navSent++
	switch {
	case code == 202 || code == 200 || code == 204:
		l.counts.navAccepted++
	case code == 404 || code == 405:
		l.counts.navUnsupported++
	default:
		l.counts.navFailed++
	}
	l.mu.Unlock()
}

func (l *ledger) snapshot() counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts
}

// settled reports whether every acknowledged inbound message was delivered
// (when deliveries are expected) and every acknowledged reply reached the
// fake API (when it runs).
func (l *ledger) settled(expectDelivery, expectAPI bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if expectDelivery {
		for _, m := range l.in {
			if m.acked && m.firstAgent == "" {
				return false
			}
		}
	}
	if expectAPI {
		for _, r := range l.replies {
			if !r.refused && r.atAPI == 0 {
				return false
			}
		}
	}
	return true
}

// LostMessage is an acknowledged inbound message no agent saw.
type LostMessage struct {
	Seq        int64   `json:"seq"`
	MessageSid string  `json:"message_sid"`
	Phone      string  `json:"phone"`
	SentAtSec  float64 `json:"sent_at_s"`        // intended send time, seconds after the start
	Stored     *bool   `json:"stored,omitempty"` // from GET /conversations with -admin-token
}

// LostReply is an acknowledged reply that the SMS API never received, or
// received more than once.
type LostReply struct {
	Seq   int64  `json:"seq"`
	Agent string `json:"agent"`
	Phone string `json:"phone"`
	Sends int    `json:"sends"`
}

// problems lists lost inbound messages and replies lost or sent twice,
// oldest first, at most limit of each.
func (l *ledger) problems(start time.Time, expectDelivery, expectAPI bool, limit int) (lost []LostMessage, lostN int64, badReplies []LostReply, lostReplies, twice int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if expectDelivery {
		for seq, m := range l.in {
			if m.acked && m.firstAgent == "" {
				lostN++
				lost = append(lost, LostMessage{Seq: seq, MessageSid: m.sid, Phone: m.phone, SentAtSec: m.intended.Sub(start).Seconds()})
			}
		}
	}
	for seq, r := range l.replies {
		switch {
		case r.atAPI > 1:
			twice++
		case expectAPI && r.acked && r.atAPI == 0:
			lostReplies++
		default:
			continue
		}
		badReplies = append(badReplies, LostReply{Seq: seq, Agent: r.agent, Phone: r.phone, Sends: r.atAPI})
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i].Seq < lost[j].Seq })
	sort.Slice(badReplies, func(i, j int) bool { return badReplies[i].Seq < badReplies[j].Seq })
	if len(lost) > limit {
		lost = lost[:limit]
	}
	if len(badReplies) > limit {
		badReplies = badReplies[:limit]
	}
	return lost, lostN, badReplies, lostReplies, twice
}

func (l *ledger) errorCounts() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int64, len(l.errors))
	for k, v := range l.errors {
		out[k] = v
	}
	return out
}
