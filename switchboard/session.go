package switchboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// WebSocket limits. A frame from an agent is small: the longest reply is
// protocol.MaxText bytes, so 64 KiB leaves room for JSON escaping.
const (
	maxFrame  = 64 << 10
	writeWait = 10 * time.Second
	pongWait  = 60 * time.Second
	// Well under the 55 s after which Heroku's router (and many proxies)
	// drop an idle connection.
	pingPeriod = 25 * time.Second
	pingWait   = 2 * time.Second
	// A session's write queue holds at most this many frames or bytes; an
	// agent that lets it fill is disconnected. Reconnecting with many
	// conversations queues one "assigned" frame each, so the frame limit
	// stays well above the largest capacity an agent works with.
	sendQueueLen   = 1024
	sendQueueBytes = 4 << 20
)

// writeBuffers are shared by all sessions: an idle connection holds none.
var writeBuffers sync.Pool

// outFrame is a frame waiting in a session's write queue. born is when the
// event that caused it entered the node (zero when not measured), for the
// routing latency metric.
type outFrame struct {
	data []byte
	born time.Time
}

// session is one agent WebSocket connection. Frames to the agent go into a
// bounded queue; a writer goroutine runs only while the queue has frames
// (an idle session holds no writer goroutine, no timer and no write
// buffer), and one pinger per node keeps every connection alive. When the
// queue is full the agent is too slow and is disconnected, so a slow agent
// never slows the node.
type session struct {
	id       string // names this connection in presence events
	n        *Node
	conn     *websocket.Conn
	agent    string
	capacity int // from the token; 0 = node default
	// supervisor: opened with the admin token (flow.go); not an agent.
	supervisor bool
	epoch      uint64
	log        *slog.Logger

	// expires is when the agent's token expires (zero: never): the
	// session ends then (watchExpiry, admit).
	expires    time.Time
	expireOnce sync.Once
	// limit is the frame rate limit; used by the reader goroutine only.
	limit bucket

	// What the agent last declared, to re-assert it.
	available    atomic.Bool
	lastCapacity atomic.Int64

	// The write queue grows on demand, so an idle session costs nothing
	// here. writing is true while a writer goroutine runs, and stays true
	// once the session is finished.
	mu          sync.Mutex
	queue       []outFrame
	queuedBytes int
	writing     bool
	finishOnce  sync.Once

	done      chan struct{}
	closeOnce sync.Once
	closeMsg  []byte        // close frame to send, set before done is closed
	readDone  chan struct{} // closed when readLoop returns
}

// closeWait bounds how long a closing session waits for the agent's own
// close frame (the WebSocket close handshake) before it drops the TCP
// connection. Dropping it with the agent's frames still unread sends a
// reset, which can discard our close frame, and its reason, before the
// agent reads it; so the reader drains what the agent sends meanwhile.
const closeWait = time.Second

func newSession(n *Node, conn *websocket.Conn, agent string, capacity int) *session {
	return &session{
		n:        n,
		conn:     conn,
		agent:    agent,
		capacity: capacity,
		log:      n.log.With("agent", agent),
		limit:    newBucket(n.opts.AgentRate, n.opts.AgentBurst),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
}

// enqueue queues f for the agent without blocking. It reports false when the
// session is closed or too slow (and then closes it).
func (s *session) enqueue(f protocol.Frame, born time.Time) bool {
	// f.MarshalJSON, not json.Marshal(f): json.Marshal would scan and copy
	// the encoding MarshalJSON returns (it is json.Marshal's own output,
	// HTML-escaped alike, so the bytes are the same).
	data, err := f.MarshalJSON()
	if err != nil {
		s.log.Error("encode frame", "type", f.Type, "err", err)
		return false
	}
	return s.enqueueRaw(data, born)
}

func (s *session) enqueueRaw(data []byte, born time.Time) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	s.mu.Lock()
	if len(s.queue) >= sendQueueLen || s.queuedBytes+len(data) > sendQueueBytes {
		s.mu.Unlock()
		s.n.metrics.slowAgents.Inc()
		s.log.Warn("agent too slow: write queue full, disconnecting", "frames", sendQueueLen, "bytes", sendQueueBytes)
		s.close(websocket.CloseTryAgainLater, "too slow")
		return false
	}
	s.queue = append(s.queue, outFrame{data: data, born: born})
	s.queuedBytes += len(data)
	start := !s.writing
	s.writing = true
	s.mu.Unlock()
	if start {
		go s.writeOut()
	}
	return true
}

// take empties the write queue.
func (s *session) take() []outFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue, s.queuedBytes = nil, 0
	return q
}

// close ends the session once: the writer sends a close frame and closes
// the connection, which ends the reader.
func (s *session) close(code int, text string) {
	s.closeOnce.Do(func() {
		s.closeMsg = websocket.FormatCloseMessage(code, text)
		close(s.done)
		s.mu.Lock()
		start := !s.writing
		s.writing = true
		s.mu.Unlock()
		if start {
			go s.writeOut() // flushes what is queued, then says goodbye
		}
	})
}

// writeOut is the session's writer: it runs while frames are queued and is
// the only goroutine writing data frames to conn. After close it flushes the
// queue, sends the close frame and closes the connection.
func (s *session) writeOut() {
	for {
		frames := s.take()
		if len(frames) > 0 {
			if !s.write(frames) {
				s.close(websocket.CloseGoingAway, "")
				s.finish(false) // the connection is broken: no handshake
				return
			}
			continue
		}
		s.mu.Lock()
		if len(s.queue) > 0 {
			s.mu.Unlock()
			continue
		}
		select {
		case <-s.done:
			s.mu.Unlock() // writing stays true: the session is finished
			s.finish(true)
			return
		default:
		}
		s.writing = false
		s.mu.Unlock()
		return
	}
}

func (s *session) write(frames []outFrame) bool {
	for _, f := range frames {
		s.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := s.conn.WriteMessage(websocket.TextMessage, f.data); err != nil {
			return false
		}
		if !f.born.IsZero() {
			s.n.metrics.routeLatency.Observe(s.n.now().Sub(f.born))
		}
	}
	return true
}

// finish says goodbye and closes the connection, which ends the reader if
// it still runs. With handshake it first waits (at most closeWait) for
// the reader to meet the agent's close frame.
func (s *session) finish(handshake bool) {
	s.finishOnce.Do(func() {
		s.conn.WriteControl(websocket.CloseMessage, s.closeMsg, time.Now().Add(time.Second))
		if handshake {
			s.conn.SetReadDeadline(time.Now().Add(closeWait))
			t := time.NewTimer(closeWait)
			select {
			case <-s.readDone:
			case <-t.C:
			}
			t.Stop()
		}
		s.conn.Close()
	})
}

// withoutReader says that no reader will run (the session ends before its
// readLoop starts), so that finish does not wait for one.
func (s *session) withoutReader() { close(s.readDone) }

// ping sends a WebSocket ping; a connection that cannot take one within
// pingWait is closed. WriteControl may run beside the writer.
func (s *session) ping() {
	if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(pingWait)); err != nil {
		s.close(websocket.CloseGoingAway, "")
	}
}

// pinger pings every live session once per pingPeriod until ctx ends.
func (n *Node) pinger(ctx context.Context) {
	t := time.NewTicker(pingPeriod)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		n.live.Range(func(k, _ any) bool {
			k.(*session).ping()
			return ctx.Err() == nil
		})
	}
}

// readLoop reads and handles the agent's frames until the connection ends.
func (s *session) readLoop() {
	// The frame size is limited here rather than with SetReadLimit: on
	// its limit gorilla sends a bare close frame itself, before the agent
	// could be told why in an error frame.
	defer close(s.readDone)
	defer s.watchExpiry()()
	s.conn.SetReadDeadline(time.Now().Add(pongWait))
	s.conn.SetPongHandler(func(string) error {
		select {
		case <-s.done: // closing: finish set the deadline
		default:
			s.conn.SetReadDeadline(time.Now().Add(pongWait))
		}
		return nil
	})
	for {
		typ, data, err := s.readFrame()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				s.n.metrics.badFrames.Inc()
				s.enqueue(protocol.ErrorFrame(protocol.CodeTooLarge, fmt.Sprintf("frame larger than %d bytes", maxFrame), ""), time.Time{})
				s.close(websocket.CloseMessageTooBig, "frame too large")
			} else {
				s.close(websocket.CloseNormalClosure, "")
			}
			return
		}
		select {
		case <-s.done:
			continue // closing: drained, unanswered, until the agent's close frame (finish)
		default:
		}
		s.conn.SetReadDeadline(time.Now().Add(pongWait))
		if !s.admit(typ, data) {
			continue // over the rate, or the token expired: refused here, not handled
		}
		s.handleAside(typ, data)
	}
}

// handleAside handles a frame read by readLoop on a goroutine of its own,
// and waits for it: frames are handled one at a time, in order, as if
// readLoop did it. Handling runs deep (JSON, the router, the store), and a
// goroutine keeps a stack as large as it ever grew until a collection
// finds it parked using less than a quarter of it; readLoop, parked
// between frames inside the WebSocket reader, never does. Handled
// aside, an idle agent's reader keeps the small stack that reading
// needs (BENCHMARKS.md, "Idle agent connections").
func (s *session) handleAside(typ int, data []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.handleData(typ, data)
	}()
	<-done
}

// handleData handles one frame's data (readLoop, through handleAside).
func (s *session) handleData(typ int, data []byte) {
	if typ != websocket.TextMessage {
		s.n.metrics.badFrames.Inc()
		s.enqueue(protocol.ErrorFrame(protocol.CodeBadFrame, "frames must be JSON text", ""), time.Time{})
		return
	}
	f, err := protocol.DecodeRequest(data)
	if err != nil {
		s.n.metrics.badFrames.Inc()
		var pe *protocol.Error
		if errors.As(err, &pe) {
			s.enqueue(pe.Frame(), time.Time{})
		}
		return
	}
	s.n.handleFrame(s, f)
}

// readFrame reads one message of at most maxFrame bytes. A longer one
// returns websocket.ErrReadLimit after reading maxFrame+1 bytes of it.
func (s *session) readFrame() (int, []byte, error) {
	typ, r, err := s.conn.NextReader()
	if err != nil {
		return 0, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, maxFrame+1))
	if err != nil {
		return 0, nil, err
	}
	if len(data) > maxFrame {
		return 0, nil, websocket.ErrReadLimit
	}
	return typ, data, nil
}
