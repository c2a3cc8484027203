package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/token"
)

// simAgent is one simulated agent. Its reader goroutine only reads frames
// and stamps their arrival time; everything else (state, writes to the
// connection) happens on its loop goroutine, so the state needs no lock and
// the connection has a single writer.
type simAgent struct {
	r     *Runner
	name  string
	conn  *websocket.Conn
	rnd   *rand.Rand
	ready chan struct{} // closed after "available" was sent

	frames     chan arrived
	due        chan string   // phones whose think time is over
	releaseAll chan struct{} // end of shift: release every conversation
	// shiftOver: after the end-of-shift release, every conversation offered
	// is released at once, so the node can offer the next waiting one until
	// its queue is empty (a single release would leave a backlog larger
	// than the agents' capacity waiting, and reported as lost).
	shiftOver bool

	convs   map[string]*conv
	seenIDs map[string]bool
	refs    map[string]pendingRef // response ref → the reply
}

type pendingRef struct {
	seq   int64
	phone string
}

type arrived struct {
	f  protocol.Frame
	at time.Time
}

type conv struct {
	releasing bool // release sent; no more replies
	pending   bool // a reply is scheduled
}

// dialAgent connects agent name to target and returns it, not yet running.
func (r *Runner) dialAgent(ctx context.Context, target, name string, seed uint64) (*simAgent, error) {
	tok, err := token.Issue([]byte(r.opts.Secret), name, r.opts.Capacity, 24*time.Hour, r.opts.Now())
	if err != nil {
		return nil, fmt.Errorf("agent %s: token: %w", name, err)
	}
	wsURL := "ws" + strings.TrimPrefix(target, "http") + "/agent"
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	d := websocket.Dialer{HandshakeTimeout: r.opts.Timeout, ReadBufferSize: 2048, WriteBufferSize: 1024}
	conn, resp, err := d.DialContext(ctx, wsURL, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("agent %s: dial %s: %w (HTTP %d)", name, wsURL, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("agent %s: dial %s: %w", name, wsURL, err)
	}
	conn.SetReadLimit(4 << 20)
	return &simAgent{
		r: r, name: name, conn: conn,
		rnd:        rand.New(rand.NewPCG(seed, 0xa9e17)),
		ready:      make(chan struct{}),
		frames:     make(chan arrived, 256),
		due:        make(chan string, 64),
		releaseAll: make(chan struct{}, 1),
		convs:      make(map[string]*conv),
		seenIDs:    make(map[string]bool),
		refs:       make(map[string]pendingRef),
	}, nil
}

// run serves the agent until ctx ends, then closes the connection.
func (a *simAgent) run(ctx context.Context) {
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		a.readLoop(ctx)
	}()
	defer func() {
		a.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "load run over"), time.Now().Add(time.Second))
		a.conn.Close()
		<-readDone
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case fa, ok := <-a.frames:
			if !ok {
				return
			}
			if err := a.handle(ctx, fa); err != nil {
				a.r.led.errorf("agent_write")
				return
			}
		case <-a.releaseAll:
			a.shiftOver = true
			for phone, c := range a.convs {
				if c.releasing {
					continue
				}
				c.releasing = true
				if err := a.write(protocol.Frame{Type: protocol.TypeRelease, Phone: phone}); err != nil {
					a.r.led.errorf("agent_write")
					return
				}
			}
		case phone := <-a.due:
			if err := a.reply(phone); err != nil {
				a.r.led.errorf("agent_write")
				return
			}
		}
	}
}

func (a *simAgent) readLoop(ctx context.Context) {
	defer close(a.frames)
	for {
		_, data, err := a.conn.ReadMessage()
		at := a.r.opts.Now()
		if err != nil {
			if ctx.Err() == nil {
				a.r.led.errorf("agent_disconnected")
				a.r.log.Warn("agent connection ended", "agent", a.name, "err", err)
			}
			return
		}
		f, err := protocol.DecodeEvent(data)
		if err != nil {
			a.r.led.errorf("agent_bad_frame")
			continue
		}
		select {
		case a.frames <- arrived{f: f, at: at}:
		case <-ctx.Done():
			return
		}
	}
}

func (a *simAgent) write(f protocol.Frame) error {
	a.conn.SetWriteDeadline(time.Now().Add(a.r.opts.Timeout))
	return a.conn.WriteJSON(f)
}

func (a *simAgent) handle(ctx context.Context, fa arrived) error {
	f := fa.f
	switch f.Type {
	case protocol.TypeAlert:
		select {
		case <-a.ready:
		default:
			close(a.ready)
			return a.write(protocol.Frame{Type: protocol.TypeAvailable, Capacity: a.r.opts.Capacity})
		}
	case protocol.TypeAssigned, protocol.TypeUpdate:
		c := a.convs[f.Phone]
		if c == nil {
			if f.Type == protocol.TypeUpdate && !hasInbound(f.List) {
				return nil // the echo of our last reply, after our release
			}
			if f.Type == protocol.TypeUpdate {
				// A new customer message in a conversation we do not hold.
				a.r.led.errorf("update_for_unassigned")
			}
			c = &conv{}
			a.convs[f.Phone] = c
		}
		fresh := false
		for _, m := range f.List {
			if m.Direction != protocol.In {
				continue
			}
			if seq, ok := findMarker(m.Text, inMarker, a.r.opts.RunID); ok {
				a.r.led.seen(seq, a.name, f.Type == protocol.TypeUpdate, fa.at)
			}
			if !a.seenIDs[m.ID] {
				a.seenIDs[m.ID] = true
				fresh = true
			}
		}
		if a.shiftOver && !c.releasing {
			c.releasing = true
			return a.write(protocol.Frame{Type: protocol.TypeRelease, Phone: f.Phone})
		}
		if fresh && !c.releasing && !c.pending && a.rnd.Float64() < a.r.opts.ReplyShare {
			c.pending = true
			a.schedule(ctx, f.Phone)
		}
	case protocol.TypeReleased:
		delete(a.convs, f.Phone)
	case protocol.TypeAck:
		p, ok := a.refs[f.Ref]
		if !ok {
			return nil
		}
		delete(a.refs, f.Ref)
		a.r.led.replyAnswered(p.seq, true)
		if c := a.convs[p.phone]; c != nil && !c.pending && !c.releasing && a.rnd.Float64() < a.r.opts.ReleaseShare {
			c.releasing = true
			return a.write(protocol.Frame{Type: protocol.TypeRelease, Phone: p.phone})
		}
	case protocol.TypeStatus:
		a.r.led.status()
	case protocol.TypeError:
		a.r.led.errorf("agent_error_" + f.Code)
		if p, ok := a.refs[f.Ref]; ok && f.Ref != "" {
			delete(a.refs, f.Ref)
			a.r.led.replyAnswered(p.seq, false)
		}
	}
	return nil
}

// schedule makes phone due after the think time, ±50%.
func (a *simAgent) schedule(ctx context.Context, phone string) {
	d := a.r.opts.Think
	if d > 0 {
		d = d/2 + time.Duration(a.rnd.Int64N(int64(d)+1))
	}
	a.r.goTimer(ctx, d, func() {
		select {
		case a.due <- phone:
		case <-ctx.Done():
		}
	})
}

// reply answers the conversation phone, if it is still ours.
func (a *simAgent) reply(phone string) error {
	c := a.convs[phone]
	if c == nil {
		return nil
	}
	c.pending = false
	if c.releasing {
		return nil
	}
	seq := a.r.replySeq.Add(1)
	ref := "r" + strconv.FormatInt(seq, 10)
	text := agentReplies[a.rnd.IntN(len(agentReplies))]
	if !a.r.opts.Demo {
		text += " " + marker(replyMarker, a.r.opts.RunID, seq)
	}
	a.refs[ref] = pendingRef{seq: seq, phone: phone}
	a.r.led.replySent(seq, a.name, phone, a.r.opts.Now())
	return a.write(protocol.Frame{Type: protocol.TypeResponse, Phone: phone, Message: text, Ref: ref})
}

func hasInbound(list []protocol.Message) bool {
	for _, m := range list {
		if m.Direction == protocol.In {
			return true
		}
	}
	return false
}
