package switchboard

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Per-connection limits on what one agent sends (issue 19).
const (
	// DefaultAgentRate is the default frames per second one agent
	// connection may send on average (-agent-rate). A person typing sends
	// a few a second; scripted agents (sbload's simulated agents, bots
	// replying and releasing at load) send tens; the flood this stops sent
	// thousands.
	DefaultAgentRate = 100
	// DefaultAgentBurst is the default number of frames an agent may send
	// at once above that rate (-agent-burst). It is also how many frames in
	// a row a connection may have refused for the rate before it is
	// disconnected as abusive.
	DefaultAgentBurst = 200
)

// floodPenalty is how long an agent whose connection was closed for
// flooding (closeRateLimited) is refused new connections on this node,
// with 429 and Retry-After. A client that reconnects at once to flood
// again is kept out for that long, instead of costing the node a new
// session, its presence events and another burst of refused frames each
// time. The agent's other sessions are not touched.
const floodPenalty = 5 * time.Second

// penalties remembers the agents refused new connections until a time.
// Safe for concurrent use.
type penalties struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// add refuses agent's new connections until until.
func (p *penalties) add(agent string, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.until == nil {
		p.until = map[string]time.Time{}
	}
	p.until[agent] = until
}

// left returns how long agent's new connections are still refused at now
// (0: not refused), and forgets penalties that are over.
func (p *penalties) left(agent string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.until[agent]
	if !ok {
		return 0
	}
	if d := until.Sub(now); d > 0 {
		return d
	}
	delete(p.until, agent)
	return 0
}

// Close codes and reasons the node ends sessions with (the client shows
// the reason).
const (
	closeTokenExpired = "token expired: reconnect with a fresh token"
	closeRateLimited  = "rate limit exceeded"
)

// bucket is a token bucket of frames: it holds up to burst frames and
// refills at rate per second. Owned by the session's reader goroutine.
type bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
	// strikes counts frames refused in a row; a frame let through resets it.
	strikes int
}

func newBucket(rate, burst int) bucket {
	return bucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst)}
}

// take reports whether one more frame may be handled at now.
func (b *bucket) take(now time.Time) bool {
	if b.rate <= 0 {
		return true // unlimited
	}
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.strikes = 0
		return true
	}
	b.strikes++
	return false
}

// abusive reports whether the connection kept sending for more than a
// whole burst while every frame was refused.
func (b *bucket) abusive() bool { return b.rate > 0 && float64(b.strikes) > b.burst }

// admit decides whether the session handles a frame (of WebSocket type
// typ) now, before it is decoded. A frame over the rate gets error
// rate_limited (with its ref, so a reply can be sent again later); a
// connection that keeps sending while limited is closed. An expired token
// ends the session. It runs on the reader goroutine, so a refused frame
// costs no handler goroutine (session.handleAside).
func (s *session) admit(typ int, data []byte) bool {
	now := s.n.now()
	if !s.expires.IsZero() && !now.Before(s.expires) {
		s.expire()
		return false
	}
	if s.limit.take(now) {
		return true
	}
	s.n.metrics.badFrames.Inc()
	if s.limit.abusive() {
		s.log.Warn("agent over its frame rate for a whole burst: disconnecting, and refusing its new connections for a while",
			"rate", s.limit.rate, "burst", s.limit.burst, "for", floodPenalty)
		s.n.flooded.add(s.agent, now.Add(floodPenalty))
		s.close(websocket.ClosePolicyViolation, closeRateLimited)
		return false
	}
	var ref string // a refused frame is decoded only for the ref its answer names
	if typ == websocket.TextMessage {
		f, _ := protocol.DecodeRequest(data)
		ref = f.Ref
	}
	s.enqueue(protocol.ErrorFrame(protocol.CodeRateLimited,
		fmt.Sprintf("more than %g frames a second (burst %g): frame dropped, slow down", s.limit.rate, s.limit.burst), ref), time.Time{})
	return false
}

// watchExpiry ends the session when its token expires; the returned stop
// function cancels that.
func (s *session) watchExpiry() (stop func()) {
	if s.expires.IsZero() {
		return func() {}
	}
	t := time.AfterFunc(s.expires.Sub(s.n.now()), s.expire)
	return func() { t.Stop() }
}

// expire closes the session because its token expired. The agent keeps
// its conversations for the grace period, like any disconnected agent, so
// a client that reconnects with a fresh token gets them back.
func (s *session) expire() {
	s.expireOnce.Do(func() {
		s.log.Info("agent token expired: closing the session", "expired", s.expires)
		s.enqueue(protocol.ErrorFrame(protocol.CodeTokenExpired, "your token expired; reconnect with a fresh token", ""), time.Time{})
		s.close(websocket.ClosePolicyViolation, closeTokenExpired)
	})
}

func (o *Options) validateLimits() error {
	var errs []error
	if o.AgentRate < 0 {
		errs = append(errs, errors.New("-agent-rate: must not be negative (0 = unlimited)"))
	}
	if o.AgentRate > 0 && o.AgentBurst < 1 {
		errs = append(errs, errors.New("-agent-burst: must be at least 1"))
	}
	return errors.Join(errs...)
}

// limitSettings are the settings of this file (and of the channels).
func limitSettings() []Setting {
	integer := func(name, env, usage string, p func(o *Options) *int) Setting {
		return Setting{Flag: name, Env: []string{env}, Usage: usage,
			bind: func(fs *flag.FlagSet, o *Options, n, u string) { fs.IntVar(p(o), n, *p(o), u) },
			set: func(o *Options, v string) error {
				i, err := strconv.Atoi(v)
				if err == nil {
					*p(o) = i
				}
				return err
			}}
	}
	return []Setting{
		integer("agent-rate", "SWITCHBOARD_AGENT_RATE", "frames per second one agent connection may send on average (0 = unlimited)",
			func(o *Options) *int { return &o.AgentRate }),
		integer("agent-burst", "SWITCHBOARD_AGENT_BURST", "frames one agent connection may send at once above -agent-rate; this many refused in a row disconnect it",
			func(o *Options) *int { return &o.AgentBurst }),
		{Env: []string{"TWILIO_WHATSAPP_FROM"}, Usage: "the Twilio WhatsApp sender replies to WhatsApp conversations come from (E.164, with or without whatsapp:)",
			bind: func(*flag.FlagSet, *Options, string, string) {},
			set:  func(o *Options, v string) error { o.TwilioWhatsAppFrom = v; return nil }},
	}
}
