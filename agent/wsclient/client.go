// Package wsclient is the agent's WebSocket connection to a switchboard node.
// It dials with a bearer token, keeps the connection alive with pings, and
// reconnects with capped exponential backoff (at most 5 s by default) and
// jitter when the network fails, or after as long as a refusal's
// Retry-After asks (a node keeping a flooding agent out answers 429 with
// it); Reconnect skips the wait. A token the node
// refuses (401: invalid or expired) stops the client: retrying cannot help,
// the agent needs a new token. Every (re)connection starts by re-sending the agent's presence
// (available or away), which makes the node re-send an assigned frame for
// every conversation it holds for the agent: that is how the client
// resynchronises after a reconnect.
//
// What the connection sees is delivered as Events on one channel, in order.
// The reader blocks when nobody drains that channel, which pushes back on
// the server through TCP instead of buffering without bound. Outgoing frames
// go through a bounded queue per connection; Send never blocks.
//
// Concurrency: Run is called once and owns every goroutine of the client;
// they all stop before Run returns. Send, SetPresence and Events are safe for
// concurrent use from any goroutine.
package wsclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Errors returned by Send.
var (
	// ErrNotConnected means there is no connection now; the frame was not sent.
	ErrNotConnected = errors.New("wsclient: not connected")
	// ErrQueueFull means the connection's write queue is full (the network is
	// slower than the agent); the frame was not sent.
	ErrQueueFull = errors.New("wsclient: write queue full")
	// ErrTokenRefused is wrapped by the error of a handshake the node
	// answered 401 (the token is invalid or expired). Run stops on it.
	ErrTokenRefused = errors.New("token refused (401)")
	// ErrReplaced is wrapped by the error of a connection the node closed
	// because the same agent signed in elsewhere (protocol.CloseReplaced).
	// Run then waits for Reconnect instead of reconnecting by itself.
	ErrReplaced = errors.New("the agent signed in elsewhere")
)

// Options configures a Client. Zero values take the documented defaults.
type Options struct {
	URL   string // ws:// or wss:// URL of the node's /agent endpoint; required
	Token string // bearer token; required

	Away     bool // start away instead of available
	Capacity int  // sent with available; zero: the node's default
	// NoPresence sends no presence on connect: a supervisor session
	// (opened with the admin token) is not an agent.
	NoPresence bool

	MinBackoff   time.Duration // first reconnect delay; zero: 500ms
	MaxBackoff   time.Duration // cap on the delay; zero: 5s
	PingInterval time.Duration // ping period; the read deadline is 2.5 × it; zero: 20s
	WriteTimeout time.Duration // per-frame write deadline; zero: 10s
	ReadLimit    int64         // largest accepted frame in bytes; zero: 4 MiB
	QueueSize    int           // outgoing frames buffered per connection; zero: 64

	Dialer *websocket.Dialer                    // zero: a dialer with a 10s handshake timeout
	Logger *slog.Logger                         // zero: slog.Default()
	Jitter func(int64) int64                    // returns a value in [0, n); zero: math/rand/v2
	Now    func() time.Time                     // zero: time.Now
	Sleep  func(time.Duration) <-chan time.Time // zero: time.After
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// Connecting: a dial attempt starts (Attempt counts from 1).
	Connecting EventKind = iota + 1
	// Connected: the connection is up and presence has been queued.
	Connected
	// Disconnected: the connection failed or the dial failed; Err says why
	// and RetryIn when the next attempt starts.
	Disconnected
	// Received: a frame arrived from the node.
	Received
	// Refused: the node refused the token (Err wraps ErrTokenRefused and
	// says why); Run stops and returns Err.
	Refused
	// Replaced: the node closed the connection because the same agent
	// signed in elsewhere (Err wraps ErrReplaced). Run dials again only
	// when Reconnect is called (taking the agent back from the other
	// place), never by itself: two clients of one agent would otherwise
	// close each other in turn forever.
	Replaced
)

// Event is one thing that happened on the connection.
type Event struct {
	Kind    EventKind
	Frame   protocol.Frame // Received
	Err     error          // Disconnected
	RetryIn time.Duration  // Disconnected
	Attempt int            // Connecting, Disconnected
}

// Client is a reconnecting agent connection. Create it with New.
type Client struct {
	opts   Options
	log    *slog.Logger
	events chan Event

	kick chan struct{} // Reconnect: skip the wait before the next dial

	mu    sync.Mutex
	out   chan []byte // queue of the current connection; nil when disconnected
	away  bool
	stats struct{ dials, connects int }
}

// New validates opts and returns a client. Nothing is dialled until Run.
func New(opts Options) (*Client, error) {
	if opts.URL == "" {
		return nil, errors.New("wsclient: -url is required (SWITCHBOARD_URL)")
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("wsclient: -url %q must be a ws:// or wss:// URL", opts.URL)
	}
	if opts.Token == "" {
		return nil, errors.New("wsclient: -token is required (SWITCHBOARD_TOKEN)")
	}
	if opts.Capacity < 0 || opts.Capacity > protocol.MaxCapacity {
		return nil, fmt.Errorf("wsclient: capacity %d out of range 0..%d", opts.Capacity, protocol.MaxCapacity)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.MinBackoff, 500*time.Millisecond)
	def(&opts.MaxBackoff, 5*time.Second)
	def(&opts.PingInterval, 20*time.Second)
	def(&opts.WriteTimeout, 10*time.Second)
	if opts.MaxBackoff < opts.MinBackoff {
		return nil, fmt.Errorf("wsclient: max backoff %v is below min backoff %v", opts.MaxBackoff, opts.MinBackoff)
	}
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = 4 << 20
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 64
	}
	if opts.Dialer == nil {
		opts.Dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Int64N
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = time.After
	}
	return &Client{
		opts:   opts,
		log:    opts.Logger.With("component", "wsclient"),
		events: make(chan Event),
		kick:   make(chan struct{}, 1),
		away:   opts.Away,
	}, nil
}

// Reconnect makes a disconnected client dial again now instead of after its
// backoff, or, after the agent signed in elsewhere (Replaced), at all. It
// never blocks; it does nothing while connected or connecting, or after the
// token was refused.
func (c *Client) Reconnect() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Events returns the channel on which Run delivers events. It is never
// closed; Run stops sending when its context is done.
func (c *Client) Events() <-chan Event { return c.events }

// Send queues a frame for the current connection. It never blocks: it
// returns ErrNotConnected or ErrQueueFull when the frame cannot be queued.
// A queued frame may still be lost if the connection fails before it is
// written; callers that need certainty wait for an ack.
func (c *Client) Send(f protocol.Frame) error {
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("wsclient: encode %s: %w", f.Type, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enqueueLocked(data)
}

func (c *Client) enqueueLocked(data []byte) error {
	if c.out == nil {
		return ErrNotConnected
	}
	select {
	case c.out <- data:
		return nil
	default:
		return ErrQueueFull
	}
}

// SetPresence records whether the agent is away and tells the node if
// connected. The presence is re-sent on every reconnection.
func (c *Client) SetPresence(away bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.away = away
	data, _ := json.Marshal(c.presenceLocked())
	return c.enqueueLocked(data)
}

func (c *Client) presenceLocked() protocol.Frame {
	if c.away {
		return protocol.Frame{Type: protocol.TypeAway}
	}
	return protocol.Frame{Type: protocol.TypeAvailable, Capacity: c.opts.Capacity}
}

// backoff returns the delay before attempt n (1-based): the capped
// exponential MinBackoff·2^(n-1), then "equal jitter": a random value in
// [d/2, d), so that many agents cut off together do not reconnect together.
func (c *Client) backoff(n int) time.Duration {
	d := c.opts.MinBackoff
	for i := 1; i < n && d < c.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.opts.MaxBackoff)
	half := int64(d / 2)
	return time.Duration(half + c.opts.Jitter(max(half, 1)))
}

// Run connects and reconnects until ctx is done, delivering events. It
// returns ctx's error after every goroutine it started has stopped.
func (c *Client) Run(ctx context.Context) error {
	attempt := 0
	for {
		attempt++
		if !c.emit(ctx, Event{Kind: Connecting, Attempt: attempt}) {
			return ctx.Err()
		}
		up, err := c.connectOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrTokenRefused) {
			c.log.Warn("token refused; not retrying", "err", err)
			c.emit(ctx, Event{Kind: Refused, Err: err, Attempt: attempt})
			return err
		}
		if errors.Is(err, ErrReplaced) {
			c.log.Info("signed in elsewhere; waiting for Reconnect", "err", err)
			select {
			case <-c.kick: // a Reconnect while connected is stale
			default:
			}
			if !c.emit(ctx, Event{Kind: Replaced, Err: err, Attempt: attempt}) || !c.waitKick(ctx) {
				return ctx.Err()
			}
			attempt = 0
			continue
		}
		if up >= 5*time.Second {
			attempt = 1 // a connection that held resets the backoff
		}
		wait := c.backoff(attempt)
		if later, ok := errors.AsType[*retryLater](err); ok && later.after > wait {
			wait = later.after // the node said when (429 or 503 with Retry-After)
		}
		c.log.Info("disconnected", "err", err, "retry_in", wait, "attempt", attempt)
		if !c.emit(ctx, Event{Kind: Disconnected, Err: err, RetryIn: wait, Attempt: attempt}) {
			return ctx.Err()
		}
		select {
		case <-c.kick: // a Reconnect while connected is stale
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.opts.Sleep(wait):
		case <-c.kick:
			attempt = 0 // asked for: the next wait starts from the shortest
		}
	}
}

// waitKick waits for Reconnect; false when ctx is done first.
func (c *Client) waitKick(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-c.kick:
		return true
	}
}

func (c *Client) emit(ctx context.Context, ev Event) bool {
	select {
	case c.events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// connectOnce dials, serves one connection until it fails, and reports how
// long it was up.
func (c *Client) connectOnce(ctx context.Context) (time.Duration, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.opts.Token)
	conn, resp, err := c.opts.Dialer.DialContext(ctx, c.opts.URL, h)
	if err != nil {
		if resp != nil {
			return 0, handshakeError(c.opts.URL, resp, err)
		}
		return 0, fmt.Errorf("wsclient: dial: %w", err)
	}
	start := c.opts.Now()
	c.log.Info("connected", "url", redact(c.opts.URL))

	out := make(chan []byte, c.opts.QueueSize)
	c.mu.Lock()
	if !c.opts.NoPresence {
		data, _ := json.Marshal(c.presenceLocked())
		out <- data // presence first: the node re-sends assigned frames after it
	}
	c.out = out
	c.mu.Unlock()

	connCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errc <- c.writeLoop(connCtx, conn, out) }()
	go func() { defer wg.Done(); errc <- c.readLoop(connCtx, conn) }()

	// The Connected event goes out after the queue is installed, so a
	// reaction to it (like sending a reply) can already be queued.
	ok := c.emit(connCtx, Event{Kind: Connected})
	if !ok {
		err = ctx.Err()
	} else {
		err = <-errc
	}
	cancel()
	conn.Close() // unblocks the reader
	wg.Wait()

	c.mu.Lock()
	c.out = nil
	c.mu.Unlock()
	return c.opts.Now().Sub(start), err
}

func (c *Client) readLoop(ctx context.Context, conn *websocket.Conn) error {
	deadline := c.opts.PingInterval * 5 / 2
	conn.SetReadLimit(c.opts.ReadLimit)
	_ = conn.SetReadDeadline(time.Now().Add(deadline))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(deadline)) })
	for {
		_, data, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.ClosePolicyViolation && ce.Text == protocol.CloseReplaced {
			return fmt.Errorf("wsclient: node closed the connection: %w", ErrReplaced)
		}
		if err != nil {
			return fmt.Errorf("wsclient: read: %w", err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		f, err := protocol.DecodeEvent(data)
		if err != nil {
			c.log.Warn("dropping undecodable frame", "err", err, "bytes", len(data))
			continue
		}
		if !c.emit(ctx, Event{Kind: Received, Frame: f}) {
			return ctx.Err()
		}
	}
}

func (c *Client) writeLoop(ctx context.Context, conn *websocket.Conn, out <-chan []byte) error {
	ping := time.NewTicker(c.opts.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return ctx.Err()
		case data := <-out:
			_ = conn.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
			if err := conn.WriteMessage(websocket.TextMessage, data); err != nil {
				return fmt.Errorf("wsclient: write: %w", err)
			}
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opts.WriteTimeout)); err != nil {
				return fmt.Errorf("wsclient: ping: %w", err)
			}
		}
	}
}

// handshakeError says why the node answered the upgrade with resp instead
// of a WebSocket, in words the agent can act on.
func handshakeError(raw string, resp *http.Response, err error) error {
	why := refusal(resp)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		// The node says why ("agent token expired", "invalid agent
		// token"): the agent needs that to know what to fix.
		if why == "" {
			why = "no reason given"
		}
		return fmt.Errorf("wsclient: dial: %w: %s", ErrTokenRefused, why)
	case http.StatusNotFound:
		path := "/"
		if u, perr := url.Parse(raw); perr == nil && u.Path != "" {
			path = u.Path
		}
		return fmt.Errorf("wsclient: dial: the node has no WebSocket at %s (404): -url must end in /agent", path)
	}
	var out error
	if why != "" {
		out = fmt.Errorf("wsclient: dial: HTTP %d: %s", resp.StatusCode, why)
	} else {
		out = fmt.Errorf("wsclient: dial: HTTP %d: %w", resp.StatusCode, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		// A node that refused this agent's connections for a while (after
		// a flood) says how long: retrying sooner only gets refused again.
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 {
			return &retryLater{err: out, after: min(time.Duration(secs)*time.Second, maxRetryAfter)}
		}
	}
	return out
}

// maxRetryAfter caps the wait a node's Retry-After asks for.
const maxRetryAfter = time.Minute

// retryLater is a refused handshake whose answer said when to try again.
type retryLater struct {
	err   error
	after time.Duration
}

func (e *retryLater) Error() string { return e.err.Error() }
func (e *retryLater) Unwrap() error { return e.err }

// redact drops the query string, which may hold a token.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	u.RawQuery = ""
	u.User = nil
	return u.String()
}

// refusal returns the first line of a refused handshake's body, cut short
// and stripped of control characters: it is shown on the agent's terminal.
func refusal(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, line)
	if len(line) > 80 {
		line = line[:80]
	}
	return strings.TrimSpace(strings.ToValidUTF8(line, ""))
}
