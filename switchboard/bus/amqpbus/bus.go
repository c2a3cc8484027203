package amqpbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/internal/pause"
)

// Header names this package sets on messages it republishes.
const (
	hdrAttempts = "x-switchboard-attempts" // failed handler calls so far
	hdrKey      = "x-switchboard-key"      // original routing key (retries travel by queue name)
	hdrError    = "x-switchboard-error"    // why a message was dead-lettered
	hdrQueue    = "x-switchboard-queue"    // the queue it was dead-lettered from
)

// maxDeadLetters bounds one DeadLetters snapshot.
const maxDeadLetters = 10000

// Bus is the RabbitMQ implementation of bus.Bus. See the package comment.
type Bus struct {
	opts     Options
	log      *slog.Logger
	cfg      amqp.Config
	url      string // redacted, for logs and errors
	dlx      string
	deadQ    string
	idPrefix string // makes MessageIds unique across processes

	ctx       context.Context // cancelled last by Close: publisher and supervisor
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	subCtx    context.Context // cancelled first by Close: subscriptions
	subCancel context.CancelFunc
	subWG     sync.WaitGroup
	closeOnce sync.Once

	mu       sync.Mutex
	closed   bool
	conn     *amqp.Connection // nil while disconnected
	connUp   chan struct{}    // closed while conn is set; replaced when it is lost
	netConn  net.Conn         // TCP connection under conn (test hook)
	dialCtx  context.Context  // bounds the dial in progress
	dialErr  error            // why the last connection attempt failed
	declared map[string]bool  // queues declared, for Declared()

	// Publisher. Publishes queue in outq; the send loop writes what is
	// queued (see sendLoop for when). sendMu (a 1-slot channel so waiting
	// honors ctx) serializes sends on pch, which keeps GetNextPublishSeqNo
	// exact and republishing in order; pmu guards the queue and the maps
	// and is never held across I/O.
	sem         chan struct{} // confirm window
	sendMu      chan struct{}
	outq        []*pubReq     // accepted, not yet handed to the send loop, in seq order
	outSig      chan struct{} // 1-slot: outq is not empty
	pmu         sync.Mutex
	pch         *amqp.Channel
	pending     map[uint64]*pubReq // delivery tag on pch → request
	unconfirmed map[string]*pubReq // MessageId → every accepted, unresolved request
	seq         uint64
	pubClosed   bool
	maxPending  int           // highest len(pending) seen, for tests
	runs        int           // non-empty writes by the send loop, for tests
	pubReady    chan struct{} // closed when the first publishing channel is open
	pubOnce     sync.Once
	reconnects  atomic.Int64
}

type pubReq struct {
	id         string
	seq        uint64
	exchange   string
	key        string
	body       []byte
	headers    amqp.Table
	expiration string

	// guarded by Bus.pmu
	sent      bool // published on the current channel, awaiting its confirm
	returned  bool // the broker returned it as unroutable
	abandoned bool // the caller gave up: resolve quietly, never republish
	finished  bool
	done      chan error // buffered 1
}

// Dial connects to the broker, declares the topology and starts the
// connection supervisor. It fails if this first connection fails; later
// connection losses are retried forever with capped backoff.
func Dial(ctx context.Context, opts Options) (*Bus, error) {
	b, err := newBus(opts)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.dialCtx = ctx
	b.mu.Unlock()
	conn, err := b.connect()
	if err != nil {
		b.cancel()
		return nil, fmt.Errorf("amqpbus: dial %s: %w", b.url, err)
	}
	b.mu.Lock()
	b.dialCtx = b.ctx
	b.mu.Unlock()
	b.setConn(conn)
	b.run(conn)
	select {
	case <-b.pubReady:
	case <-ctx.Done():
		b.Close()
		return nil, fmt.Errorf("amqpbus: dial %s: open publishing channel: %w", b.url, ctx.Err())
	}
	b.log.Info("connected")
	return b, nil
}

// Open is Dial that does not wait for the broker: it returns at once and
// connects in the background, retrying with capped backoff (ReconnectMin
// to ReconnectMax) until it is connected, then as after any connection
// loss. Until then Ready reports why it is not, Subscribe waits for the
// connection and Publish waits for it or its ctx.
func Open(opts Options) (*Bus, error) {
	b, err := newBus(opts)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.dialCtx = b.ctx
	b.mu.Unlock()
	b.run(nil)
	return b, nil
}

func newBus(opts Options) (*Bus, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(opts.URL)
	var id [6]byte
	_, _ = rand.Read(id[:])
	b := &Bus{
		opts:        opts,
		url:         u.Redacted(),
		dlx:         opts.Exchange + ".dlx",
		deadQ:       opts.Exchange + ".dead",
		idPrefix:    hex.EncodeToString(id[:]) + ".",
		connUp:      make(chan struct{}),
		declared:    map[string]bool{},
		sem:         make(chan struct{}, opts.ConfirmWindow),
		sendMu:      make(chan struct{}, 1),
		outSig:      make(chan struct{}, 1),
		unconfirmed: map[string]*pubReq{},
		pubReady:    make(chan struct{}),
	}
	b.log = opts.Logger.With("component", "bus.amqp", "url", b.url, "exchange", opts.Exchange)
	props := amqp.NewConnectionProperties()
	props["connection_name"] = opts.ConnectionName
	b.cfg = amqp.Config{
		Heartbeat:  opts.Heartbeat,
		Properties: props,
		Locale:     "en_US",
		Dial:       b.dialTCP,
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.subCtx, b.subCancel = context.WithCancel(b.ctx)
	return b, nil
}

// run starts the supervisor (on conn; nil: it connects first) and the
// publisher.
func (b *Bus) run(conn *amqp.Connection) {
	b.wg.Add(3)
	go b.supervise(conn)
	go b.publishLoop()
	go b.sendLoop()
}

// dialTCP is amqp.Config.Dial: a context-bounded TCP dial with a deadline
// for the handshake (the library clears it once the connection is open).
func (b *Bus) dialTCP(network, addr string) (net.Conn, error) {
	b.mu.Lock()
	ctx := b.dialCtx
	b.mu.Unlock()
	d := net.Dialer{Timeout: b.opts.DialTimeout}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(b.opts.DialTimeout)); err != nil {
		c.Close()
		return nil, err
	}
	b.mu.Lock()
	b.netConn = c
	b.mu.Unlock()
	return c, nil
}

// connect dials and declares the shared topology: the topic exchange, the
// dead-letter exchange and its queue.
func (b *Bus) connect() (*amqp.Connection, error) {
	conn, err := amqp.DialConfig(b.opts.URL, b.cfg)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = b.declareTopology(ch)
		ch.Close()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func (b *Bus) declareTopology(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(b.opts.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", b.opts.Exchange, err)
	}
	if err := ch.ExchangeDeclare(b.dlx, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", b.dlx, err)
	}
	if _, err := ch.QueueDeclare(b.deadQ, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare queue %s: %w", b.deadQ, err)
	}
	if err := ch.QueueBind(b.deadQ, "", b.dlx, false, nil); err != nil {
		return fmt.Errorf("bind queue %s: %w", b.deadQ, err)
	}
	return nil
}

func (b *Bus) setConn(conn *amqp.Connection) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conn = conn
	close(b.connUp)
}

func (b *Bus) clearConn() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		b.conn = nil
		b.connUp = make(chan struct{})
	}
}

// waitConn returns the current open connection, waiting for one.
func (b *Bus) waitConn(ctx context.Context) (*amqp.Connection, error) {
	for {
		b.mu.Lock()
		conn, up, closed := b.conn, b.connUp, b.closed
		b.mu.Unlock()
		if closed || b.ctx.Err() != nil {
			return nil, bus.ErrClosed
		}
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		var retry <-chan time.Time
		if conn != nil { // dead but not yet noticed by the supervisor
			retry = time.After(10 * time.Millisecond)
		}
		select {
		case <-up:
		case <-retry:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.ctx.Done():
			return nil, bus.ErrClosed
		}
	}
}

// supervise owns the connection: it waits for it to close and reconnects
// with capped exponential backoff and jitter, forever, until Close. With
// conn nil (Open) it connects first, at once and then with the same
// backoff.
func (b *Bus) supervise(conn *amqp.Connection) {
	defer b.wg.Done()
	first := conn == nil
	for {
		if conn != nil {
			closed := conn.NotifyClose(make(chan *amqp.Error, 1))
			select {
			case err := <-closed:
				b.clearConn()
				b.log.Warn("connection lost; reconnecting", "err", err)
			case <-b.ctx.Done():
				b.clearConn()
				conn.Close()
				return
			}
		}
		var ok bool
		if conn, ok = b.reconnect(first); !ok {
			return
		}
		b.mu.Lock()
		closing := b.closed
		b.mu.Unlock()
		if closing {
			conn.Close()
			return
		}
		b.setConn(conn)
		b.setDialErr(nil)
		if first {
			b.log.Info("connected")
		} else {
			b.reconnects.Add(1)
			b.log.Info("reconnected")
		}
		first = false
	}
}

// reconnect dials until it is connected (ok) or the bus closes. The first
// connection of an Open bus is tried at once.
func (b *Bus) reconnect(now bool) (conn *amqp.Connection, ok bool) {
	backoff := b.opts.ReconnectMin
	for attempt := 1; ; attempt++ {
		if !now {
			// Full jitter in [backoff/2, backoff] spreads many nodes out.
			if !pause.For(b.ctx, backoff/2+mrand.N(backoff/2+1)) {
				return nil, false
			}
			backoff = min(2*backoff, b.opts.ReconnectMax)
		}
		now = false
		c, err := b.connect()
		if err == nil {
			return c, true
		}
		b.setDialErr(err)
		b.log.Warn("connecting failed; retrying", "attempt", attempt, "err", err, "next_in", backoff)
	}
}

// setDialErr records why the last connection attempt failed (Ready).
func (b *Bus) setDialErr(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dialErr = err
}

// Ready implements bus.Bus: nil while connected with an open publishing channel.
func (b *Bus) Ready() error {
	b.mu.Lock()
	closed, conn, dialErr := b.closed, b.conn, b.dialErr
	b.mu.Unlock()
	if closed {
		return bus.ErrClosed
	}
	if conn == nil || conn.IsClosed() {
		if dialErr != nil {
			return fmt.Errorf("amqpbus: not connected to %s: %w", b.url, dialErr)
		}
		return fmt.Errorf("amqpbus: not connected to %s", b.url)
	}
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if b.pch == nil {
		return fmt.Errorf("amqpbus: publishing channel to %s not open", b.url)
	}
	return nil
}

// Close implements bus.Bus: subscriptions stop first (their handlers may
// still publish while finishing), then the publisher, then the connection.
// Publishes still waiting for a confirm fail with bus.ErrClosed.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.subCancel()
		b.subWG.Wait()
		b.cancel()
		b.wg.Wait()
		b.log.Info("closed")
	})
	return nil
}

// Reconnects is how many times the connection was lost and re-established,
// for metrics.
func (b *Bus) Reconnects() int64 { return b.reconnects.Load() }

// Declared returns the exchanges and queues this Bus has declared, so that
// tests and tools can delete them.
func (b *Bus) Declared() (exchanges, queues []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	queues = []string{b.deadQ}
	for q := range b.declared {
		queues = append(queues, q)
	}
	sort.Strings(queues[1:])
	return []string{b.opts.Exchange, b.dlx}, queues
}

func (b *Bus) recordQueue(names ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range names {
		b.declared[n] = true
	}
}
