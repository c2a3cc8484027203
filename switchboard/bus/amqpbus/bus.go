package amqpbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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

// DeadLetters implements bus.Bus by reading the dead-letter queue without
// consuming it: messages are fetched unacknowledged and the channel is then
// closed, which puts them back in their original order.
func (b *Bus) DeadLetters(ctx context.Context) ([]bus.DeadLetter, error) {
	conn, err := b.waitConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("amqpbus: dead letters: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("amqpbus: dead letters: %w", err)
	}
	defer ch.Close()
	var out []bus.DeadLetter
	for len(out) < maxDeadLetters && ctx.Err() == nil {
		d, ok, err := ch.Get(b.deadQ, false)
		if err != nil {
			return nil, fmt.Errorf("amqpbus: dead letters: get %s: %w", b.deadQ, err)
		}
		if !ok {
			break
		}
		out = append(out, deadLetterFrom(d))
	}
	return out, ctx.Err()
}

func deadLetterFrom(d amqp.Delivery) bus.DeadLetter {
	dl := bus.DeadLetter{
		Key:      headerString(d.Headers, hdrKey, d.RoutingKey),
		Body:     d.Body,
		Queue:    headerString(d.Headers, hdrQueue, ""),
		Reason:   headerString(d.Headers, hdrError, ""),
		Attempts: headerInt(d.Headers, hdrAttempts),
	}
	// Dead-lettered by the broker (reject, TTL, length limit): x-death says why.
	if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		if death, ok := deaths[0].(amqp.Table); ok {
			if dl.Queue == "" {
				dl.Queue, _ = death["queue"].(string)
			}
			if dl.Reason == "" {
				r, _ := death["reason"].(string)
				dl.Reason = "broker: " + r
			}
		}
	}
	return dl
}

func headerString(h amqp.Table, name, def string) string {
	if s, ok := h[name].(string); ok {
		return s
	}
	return def
}

func headerInt(h amqp.Table, name string) int {
	switch v := h[name].(type) {
	case int8:
		return int(v)
	case int16:
		return int(v)
	case int32:
		return int(v)
	case int64:
		return int(v)
	case int:
		return v
	case uint8:
		return int(v)
	case uint16:
		return int(v)
	case uint32:
		return int(v)
	}
	return 0
}

// ---- publishing ----

// Publish implements bus.Bus: a persistent, mandatory publish to the topic
// exchange that returns once the broker confirmed it.
func (b *Bus) Publish(ctx context.Context, key string, body []byte) error {
	if err := bus.ValidKey(key); err != nil {
		return err
	}
	if err := b.publish(ctx, b.opts.Exchange, key, body, nil, ""); err != nil {
		return fmt.Errorf("amqpbus: publish %s: %w", key, err)
	}
	return nil
}

// publish takes a slot of the confirm window, hands the message to the
// current publishing channel (or leaves it for the publish loop to send when
// a channel is open again) and waits for its confirm.
func (b *Bus) publish(ctx context.Context, exchange, key string, body []byte, headers amqp.Table, expiration string) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return bus.ErrClosed
	}
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.ctx.Done():
		return bus.ErrClosed
	}
	req := &pubReq{
		exchange: exchange, key: key, body: body, headers: headers, expiration: expiration,
		done: make(chan error, 1),
	}
	b.pmu.Lock()
	if b.pubClosed {
		b.pmu.Unlock()
		<-b.sem
		return bus.ErrClosed
	}
	b.seq++
	req.seq = b.seq
	req.id = fmt.Sprintf("%s%d", b.idPrefix, b.seq)
	b.unconfirmed[req.id] = req
	b.outq = append(b.outq, req)
	b.pmu.Unlock()
	select {
	case b.outSig <- struct{}{}:
	default: // the send loop has been told already
	}

	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		b.abandon(req)
		return ctx.Err()
	}
}

// sendLoop writes queued publishes. A write happens at once when nothing
// is awaiting a confirm (a lone or sequential publisher is never delayed)
// or when Linger has passed since the previous write; otherwise it waits
// for that. Publishes under load therefore go out in runs, at most one run
// per Linger while confirms are outstanding.
func (b *Bus) sendLoop() {
	defer b.wg.Done()
	var last time.Time
	var spare []*pubReq
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-b.outSig:
		case <-b.ctx.Done():
			return
		}
		b.pmu.Lock()
		inFlight := len(b.pending)
		b.pmu.Unlock()
		if wait := b.opts.Linger - time.Since(last); wait > 0 && inFlight > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-b.ctx.Done():
				return
			}
		}
		select {
		case b.sendMu <- struct{}{}:
		case <-b.ctx.Done():
			return
		}
		b.pmu.Lock()
		run := b.outq
		b.outq = spare[:0]
		if len(run) > 0 {
			b.runs++
		}
		b.pmu.Unlock()
		for _, req := range run {
			b.send(req)
		}
		<-b.sendMu
		if len(run) > 0 {
			last = time.Now()
		}
		clear(run)
		spare = run
	}
}

// send publishes req on the current channel unless it is already out, done
// or there is no channel. The caller holds sendMu.
func (b *Bus) send(req *pubReq) {
	b.pmu.Lock()
	ch := b.pch
	if req.sent || req.finished || ch == nil {
		b.pmu.Unlock()
		return
	}
	tag := ch.GetNextPublishSeqNo()
	b.pending[tag] = req
	b.maxPending = max(b.maxPending, len(b.pending))
	req.sent = true
	b.pmu.Unlock()

	err := ch.Publish(req.exchange, req.key, true, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		ContentType:  b.opts.ContentType,
		MessageId:    req.id,
		Timestamp:    time.Now(),
		Headers:      req.headers,
		Expiration:   req.expiration,
		Body:         req.body,
	})
	if err != nil {
		// A channel that returned an error is dead: give the message back
		// and close the channel so the publish loop opens a new one and
		// republishes everything unconfirmed.
		b.pmu.Lock()
		if b.pch == ch {
			delete(b.pending, tag)
			req.sent = false
		}
		b.pmu.Unlock()
		b.log.Debug("publish failed; replacing channel", "err", err)
		ch.Close()
	}
}

// finishLocked resolves req once and frees its window slot. pmu is held.
func (b *Bus) finishLocked(req *pubReq, err error) {
	if req.finished {
		return
	}
	req.finished = true
	delete(b.unconfirmed, req.id)
	req.done <- err
	<-b.sem
}

// abandon is called when the publisher's ctx ends first. An unsent message
// is dropped at once; a sent one keeps its window slot until its confirm
// arrives (the window bounds what the broker holds) but is never republished.
func (b *Bus) abandon(req *pubReq) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if req.finished {
		return
	}
	if req.sent {
		req.abandoned = true
		return
	}
	b.finishLocked(req, context.Canceled)
}

// publishLoop keeps one confirm-mode publishing channel open, republishes
// whatever is unconfirmed whenever it opens a new one, and routes confirms
// and returns to the waiting publishers.
func (b *Bus) publishLoop() {
	defer b.wg.Done()
	defer func() {
		b.pmu.Lock()
		b.pubClosed = true
		b.pch = nil
		for _, req := range b.unconfirmed {
			b.finishLocked(req, bus.ErrClosed)
		}
		b.pmu.Unlock()
	}()
	for {
		conn, err := b.waitConn(b.ctx)
		if err != nil {
			return
		}
		ch, confirms, returns, chClosed, err := b.openPublishChannel(conn)
		if err != nil {
			b.log.Warn("open publishing channel", "err", err)
			if !pause.For(b.ctx, b.opts.ReconnectMin) {
				return
			}
			continue
		}
		select {
		case b.sendMu <- struct{}{}:
		case <-b.ctx.Done():
			ch.Close()
			return
		}
		b.pmu.Lock()
		b.pch = ch
		b.pending = map[uint64]*pubReq{}
		var resend []*pubReq
		for _, req := range b.unconfirmed {
			resend = append(resend, req)
		}
		b.pmu.Unlock()
		sort.Slice(resend, func(i, j int) bool { return resend[i].seq < resend[j].seq })
		for _, req := range resend {
			b.send(req)
		}
		if len(resend) > 0 {
			b.log.Info("republished unconfirmed messages", "count", len(resend))
		}
		<-b.sendMu
		b.pubOnce.Do(func() { close(b.pubReady) })

		b.handleConfirms(confirms, returns)
		select {
		case cerr := <-chClosed:
			if cerr != nil && cerr.Code == amqp.NotFound {
				// An exchange of ours is gone (deleted by hand): every
				// publish would fail the same way. Only a new connection
				// declares the topology, and every subscription's
				// bindings, again.
				b.log.Warn("publishing channel closed: exchange missing; reconnecting to declare it again", "err", cerr)
				conn.Close()
			}
		default:
		}

		b.pmu.Lock()
		b.pch = nil
		b.pending = nil
		for _, req := range b.unconfirmed {
			if req.abandoned {
				b.finishLocked(req, context.Canceled)
			}
			req.sent, req.returned = false, false
		}
		b.pmu.Unlock()
		ch.Close()
		if b.ctx.Err() != nil {
			return
		}
		if !conn.IsClosed() {
			// Only the channel died (e.g. a broker channel error): do not spin.
			b.log.Warn("publishing channel closed; reopening")
			if !pause.For(b.ctx, b.opts.ReconnectMin) {
				return
			}
		}
	}
}

func (b *Bus) openPublishChannel(conn *amqp.Connection) (*amqp.Channel, chan amqp.Confirmation, chan amqp.Return, chan *amqp.Error, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, nil, nil, nil, err
	}
	// Buffers as large as the window: the library's reader goroutine never
	// waits on us (it drops a notification after 5s on a full listener).
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, b.opts.ConfirmWindow))
	returns := ch.NotifyReturn(make(chan amqp.Return, b.opts.ConfirmWindow))
	// The close reason is sent before the confirm listener is closed, so
	// it is there when handleConfirms returns.
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	return ch, confirms, returns, closed, nil
}

// handleConfirms runs until the channel closes (the library closes the
// confirm listener) or the bus shuts down.
func (b *Bus) handleConfirms(confirms <-chan amqp.Confirmation, returns <-chan amqp.Return) {
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			b.markReturned(r)
		case c, ok := <-confirms:
			if !ok {
				return
			}
			// The broker sends basic.return before the basic.ack of the same
			// message and the library forwards them in that order, but the
			// select above may pick the confirm first: take every return
			// already queued before resolving.
			for drained := false; !drained && returns != nil; {
				select {
				case r, ok := <-returns:
					if !ok {
						returns = nil
					} else {
						b.markReturned(r)
					}
				default:
					drained = true
				}
			}
			b.resolve(c)
		case <-b.ctx.Done():
			return
		}
	}
}

func (b *Bus) markReturned(r amqp.Return) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if req := b.unconfirmed[r.MessageId]; req != nil {
		req.returned = true
	}
}

func (b *Bus) resolve(c amqp.Confirmation) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	req := b.pending[c.DeliveryTag]
	if req == nil {
		return
	}
	delete(b.pending, c.DeliveryTag)
	switch {
	case !c.Ack:
		b.finishLocked(req, errors.New("nacked by the broker"))
	case req.returned:
		b.finishLocked(req, bus.ErrUnroutable)
	default:
		b.finishLocked(req, nil)
	}
}
