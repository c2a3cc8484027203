package amqpbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/internal/pause"
)

type subscription struct {
	b          *Bus
	opts       bus.SubscribeOptions
	h          bus.Handler
	queue      string // full queue name
	retryQueue string // "" for streams
	private    bool
	log        *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	// streams: the offset to resume from after a reconnect (-1 = none yet).
	// Only the delivery goroutine touches it.
	next int64
}

// Subscribe implements bus.Bus. It declares and binds the queue and starts
// consuming before it returns, so messages published afterwards are routed.
func (b *Bus) Subscribe(ctx context.Context, opts bus.SubscribeOptions, h bus.Handler) (bus.Subscription, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("amqpbus: subscribe: nil handler")
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = b.opts.RetryDelay
	}
	s := &subscription{b: b, opts: opts, h: h, done: make(chan struct{}), next: -1}
	if opts.Queue == "" {
		var r [8]byte
		_, _ = rand.Read(r[:])
		s.private = true
		s.queue = b.opts.QueuePrefix + "private." + hex.EncodeToString(r[:])
	} else {
		s.queue = b.opts.QueuePrefix + opts.Queue
	}
	if !opts.Stream {
		s.retryQueue = s.queue + ".retry"
	}
	s.log = b.log.With("queue", s.queue)

	var ch *amqp.Channel
	var deliveries <-chan amqp.Delivery
	for backoff := b.opts.ReconnectMin; ; backoff = min(2*backoff, b.opts.ReconnectMax) {
		conn, err := b.waitConn(ctx)
		if err != nil {
			return nil, fmt.Errorf("amqpbus: subscribe %s: %w", s.queue, err)
		}
		if ch, deliveries, err = s.setup(conn); err == nil {
			break
		}
		if !transientSetupError(err) {
			return nil, fmt.Errorf("amqpbus: subscribe %s: %w", s.queue, err)
		}
		s.log.Info("subscribe: queue not ready yet; retrying", "err", err, "next_in", backoff)
		if !b.sleep(ctx, backoff) {
			return nil, fmt.Errorf("amqpbus: subscribe %s: %w", s.queue, err)
		}
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ch.Close()
		return nil, bus.ErrClosed
	}
	s.ctx, s.cancel = context.WithCancel(b.subCtx)
	b.subWG.Add(1)
	b.mu.Unlock()
	go s.run(ch, deliveries)
	return s, nil
}

// setup opens the subscription's channel, declares its queues and bindings
// and starts the consumer.
func (s *subscription) setup(conn *amqp.Connection) (*amqp.Channel, <-chan amqp.Delivery, error) {
	b := s.b
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, err
	}
	fail := func(what string, err error) (*amqp.Channel, <-chan amqp.Delivery, error) {
		ch.Close()
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	durable, exclusive := !s.private, s.private
	args := amqp.Table{"x-dead-letter-exchange": b.dlx}
	if s.opts.Stream {
		args = amqp.Table{"x-queue-type": "stream"}
	}
	declare := ch.QueueDeclare
	if s.opts.Stream && !s.opts.Retention.IsZero() {
		exists, err := streamExists(conn, s.queue)
		if err != nil {
			return fail("look for stream", err)
		}
		// Only a new stream gets the retention policy: declaring an
		// existing one with other arguments fails (406, either way round),
		// and a stream's arguments cannot change. An existing one is
		// declared passively: it keeps its own.
		if exists {
			declare = ch.QueueDeclarePassive
		} else {
			args = retentionArgs(s.opts.Retention)
		}
	}
	if _, err := declare(s.queue, durable, false, exclusive, false, args); err != nil {
		return fail("declare queue", err)
	}
	b.recordQueue(s.queue)
	if s.retryQueue != "" {
		// Failed messages wait here for their per-message TTL, then the
		// broker dead-letters them back into the main queue by name.
		retryArgs := amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": s.queue}
		if _, err := ch.QueueDeclare(s.retryQueue, durable, false, exclusive, false, retryArgs); err != nil {
			return fail("declare retry queue", err)
		}
		b.recordQueue(s.retryQueue)
	}
	for _, pattern := range s.opts.Bindings {
		if err := ch.QueueBind(s.queue, pattern, b.opts.Exchange, false, nil); err != nil {
			return fail("bind "+pattern, err)
		}
	}
	if err := ch.Qos(s.opts.Prefetch, 0, false); err != nil {
		return fail("qos", err)
	}
	var cargs amqp.Table
	if s.opts.Stream {
		var start any
		switch {
		case s.next >= 0:
			start = s.next
		case s.opts.Offset == -1:
			start = "next"
		default:
			start = s.opts.Offset
		}
		cargs = amqp.Table{"x-stream-offset": start}
	}
	deliveries, err := ch.Consume(s.queue, "", false, false, false, false, cargs)
	if err != nil {
		return fail("consume", err)
	}
	return ch, deliveries, nil
}

// transientSetupError reports whether setting up a consumer failed for a
// reason that goes away by itself. A stream that another node declared a
// moment ago refuses consumers with 406 PRECONDITION_FAILED "does not have a
// replica on the local node", or 541 INTERNAL_ERROR (which also closes the
// connection), until its member on the broker is up; a connection that dies
// in the middle of the setup is replaced by the supervisor. Anything else
// (a queue declared with other arguments, refused permissions) stays wrong
// however often it is tried.
func transientSetupError(err error) bool {
	if errors.Is(err, amqp.ErrClosed) {
		return true
	}
	var aerr *amqp.Error
	if !errors.As(err, &aerr) {
		return false
	}
	return aerr.Code == amqp.InternalError ||
		aerr.Code == amqp.PreconditionFailed && strings.Contains(aerr.Reason, "does not have a replica")
}

// sleep waits d unless ctx ends or the bus closes first; false then.
func (b *Bus) sleep(ctx context.Context, d time.Duration) bool {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(b.ctx, stop)()
	return pause.For(ctx, d)
}

// run delivers in order from one goroutine and, when the channel or the
// connection dies, sets the subscription up again until it is closed.
func (s *subscription) run(ch *amqp.Channel, deliveries <-chan amqp.Delivery) {
	defer s.b.subWG.Done()
	defer close(s.done)
	for {
		s.consume(deliveries)
		ch.Close() // unacknowledged deliveries go back to the queue
		if s.ctx.Err() != nil {
			return
		}
		s.log.Warn("consumer stopped; resubscribing")
		backoff := s.b.opts.ReconnectMin
		for {
			conn, err := s.b.waitConn(s.ctx)
			if err != nil {
				return
			}
			c, d, err := s.setup(conn)
			if err == nil {
				ch, deliveries = c, d
				break
			}
			s.log.Warn("resubscribe failed", "err", err)
			if !pause.For(s.ctx, backoff) {
				return
			}
			backoff = min(2*backoff, s.b.opts.ReconnectMax)
		}
	}
}

// streamAckEvery is how many stream deliveries one ack covers. A stream
// consumer's acks only return credit (the offset is the subscriber's to
// keep, and nothing is redelivered), so one multiple ack per run spares the
// broker and the node an ack frame per entry. It stays below the minimum
// prefetch (100), so the credit never runs out; the unacked tail of a quiet
// stream is acked by the next run or dropped with the channel.
const streamAckEvery = 64

func (s *subscription) consume(deliveries <-chan amqp.Delivery) {
	n := 0 // stream deliveries handled since the last ack
	for {
		select {
		case <-s.ctx.Done():
			return
		case d, ok := <-deliveries:
			if !ok {
				return
			}
			if !s.opts.Stream {
				s.handle(d)
				continue
			}
			if !s.handleStream(d) {
				return
			}
			if n++; n == streamAckEvery {
				s.ackRun(&d)
				n = 0
			}
		}
	}
}

// ackRun acks d and every delivery before it on its channel.
func (s *subscription) ackRun(d *amqp.Delivery) {
	if err := d.Ack(true); err != nil {
		s.log.Debug("ack failed", "err", err)
	}
}

func (s *subscription) handle(d amqp.Delivery) {
	attempts := headerInt(d.Headers, hdrAttempts)
	key := headerString(d.Headers, hdrKey, d.RoutingKey)
	err := s.h(s.ctx, bus.Delivery{Key: key, Body: d.Body, Redelivered: d.Redelivered || attempts > 0, Offset: -1})
	if err == nil {
		s.ack(d)
		return
	}
	if s.ctx.Err() != nil {
		// Closing: leave it for another consumer or the next start.
		_ = d.Nack(false, true)
		return
	}
	attempts++
	if bus.IsPermanent(err) || attempts >= s.opts.MaxAttempts {
		// If the republish fails, giveBack rejects the message and the
		// queue's own x-dead-letter-exchange still moves it to the DLX.
		if perr := s.deadLetter(d, key, attempts, err); perr != nil {
			s.giveBack(d, key, perr)
			return
		}
		s.ack(d)
		return
	}
	// Retry: a copy with the attempt count goes to the retry queue (confirmed)
	// and only then is the original acked, so it is never lost and never
	// loops hot.
	h := copyTable(d.Headers)
	h[hdrKey] = key
	h[hdrAttempts] = int32(attempts)
	ttl := strconv.FormatInt(max(1, s.opts.RetryDelay.Milliseconds()), 10)
	if perr := s.b.publish(s.ctx, "", s.retryQueue, d.Body, h, ttl); perr != nil {
		s.giveBack(d, key, perr)
		return
	}
	s.ack(d)
}

// deadLetter republishes d to the dead-letter exchange with the reason (a
// confirmed publish); the caller then acks the original.
func (s *subscription) deadLetter(d amqp.Delivery, key string, attempts int, cause error) error {
	reason := cause.Error()
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	h := copyTable(d.Headers)
	h[hdrKey] = key
	h[hdrAttempts] = int32(attempts)
	h[hdrError] = reason
	h[hdrQueue] = s.queue
	s.log.Warn("message dead-lettered", "key", key, "attempts", attempts, "err", cause)
	return s.b.publish(s.ctx, s.b.dlx, key, d.Body, h, "")
}

// giveBack handles a failed republish: while closing the message is
// requeued; otherwise it is rejected into the queue's dead-letter exchange
// rather than requeued, which could spin forever.
func (s *subscription) giveBack(d amqp.Delivery, key string, err error) {
	if s.ctx.Err() != nil {
		_ = d.Nack(false, true)
		return
	}
	s.log.Error("republish failed; rejecting to the dead-letter exchange", "key", key, "err", err)
	_ = d.Nack(false, false)
}

func (s *subscription) ack(d amqp.Delivery) {
	if err := d.Ack(false); err != nil {
		// The channel is gone: the broker redelivers the message.
		s.log.Debug("ack failed", "err", err)
	}
}

// handleStream delivers one stream entry. Stream entries cannot be requeued,
// so failures are retried in place (this also keeps the log's order) and
// then dead-lettered; the offset then moves on. It returns false when the
// subscription is closing before the entry was handled: the caller then
// stops without acking, and closing the channel drops the delivery (the
// consumer resumes at the offset after the last handled entry).
func (s *subscription) handleStream(d amqp.Delivery) bool {
	off, ok := streamOffset(d.Headers)
	if !ok {
		s.log.Error("stream delivery without x-stream-offset")
		off = -1
	}
	if ok && s.next >= 0 && off < s.next {
		return true // already delivered before a reconnect
	}
	key := d.RoutingKey
	for attempt := 1; ; attempt++ {
		err := s.h(s.ctx, bus.Delivery{Key: key, Body: d.Body, Redelivered: attempt > 1, Offset: off})
		if err == nil {
			break
		}
		if s.ctx.Err() != nil {
			return false // s.next is unchanged: resume here next time
		}
		if bus.IsPermanent(err) || attempt >= s.opts.MaxAttempts {
			if perr := s.deadLetter(d, key, attempt, err); perr != nil {
				if s.ctx.Err() != nil {
					return false
				}
				// The entry stays in the stream itself, so it is not lost.
				s.log.Error("dead-lettering a stream entry failed; skipping it", "offset", off, "err", perr)
			}
			break
		}
		if !pause.For(s.ctx, s.opts.RetryDelay) {
			return false
		}
	}
	if ok {
		s.next = off + 1
	}
	return true
}

func streamOffset(h amqp.Table) (int64, bool) {
	switch v := h["x-stream-offset"].(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case int:
		return int64(v), true
	}
	return 0, false
}

func copyTable(t amqp.Table) amqp.Table {
	out := make(amqp.Table, len(t)+4)
	for k, v := range t {
		out[k] = v
	}
	return out
}

// Close implements bus.Subscription: it stops the consumer, waits for the
// running handler, and deletes a private subscription's queues.
func (s *subscription) Close() error {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		if !s.private {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := s.b.waitConn(ctx)
		if err != nil {
			return // closed or disconnected: exclusive queues die with the connection
		}
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		defer ch.Close()
		for _, q := range []string{s.queue, s.retryQueue} {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				s.log.Debug("delete private queue", "err", err)
				return
			}
		}
	})
	return nil
}

// Head implements bus.StreamHead: it reads the first entry of the stream
// queue (QueuePrefix+queue) on a channel of its own, with a consumer that
// starts at "first" and is cancelled after one delivery.
func (b *Bus) Head(ctx context.Context, queue string) (bus.Delivery, error) {
	name := b.opts.QueuePrefix + queue
	conn, err := b.waitConn(ctx)
	if err != nil {
		return bus.Delivery{}, fmt.Errorf("amqpbus: head of %s: %w", name, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return bus.Delivery{}, fmt.Errorf("amqpbus: head of %s: %w", name, err)
	}
	// Closing the channel drops the unacked delivery. The consumer is
	// cancelled first: RabbitMQ 3.10 otherwise counts a stream's consumers
	// closed with their channel for a while (seen by QA: the log's consumer
	// count grew by one per node per check).
	defer ch.Close()
	// A stream consumer needs a prefetch.
	if err := ch.Qos(1, 0, false); err != nil {
		return bus.Delivery{}, fmt.Errorf("amqpbus: head of %s: %w", name, err)
	}
	const tag = "switchboard-head"
	deliveries, err := ch.Consume(name, tag, false, false, false, false, amqp.Table{"x-stream-offset": "first"})
	if err != nil {
		// 404 also answers for a queue that exists but is not up yet
		// ("home node ... is down or inaccessible", for a moment after the
		// broker starts): only "no queue" means there is none.
		var aerr *amqp.Error
		if errors.As(err, &aerr) && aerr.Code == amqp.NotFound && strings.Contains(aerr.Reason, "no queue") {
			return bus.Delivery{}, fmt.Errorf("amqpbus: head of %s: %w", name, bus.ErrNoQueue)
		}
		return bus.Delivery{}, fmt.Errorf("amqpbus: head of %s: %w", name, err)
	}
	defer ch.Cancel(tag, false)
	select {
	case d, ok := <-deliveries:
		if !ok {
			return bus.Delivery{}, fmt.Errorf("amqpbus: head of %s: the consumer was cancelled", name)
		}
		off, ok := streamOffset(d.Headers)
		if !ok {
			return bus.Delivery{}, fmt.Errorf("amqpbus: head of %s: delivery without x-stream-offset (not a stream?)", name)
		}
		return bus.Delivery{Key: d.RoutingKey, Body: d.Body, Offset: off}, nil
	case <-ctx.Done():
		return bus.Delivery{}, fmt.Errorf("amqpbus: head of %s: %w", name, ctx.Err())
	}
}
