package amqpbus

// This file holds publishing: the publish queue, the confirm window and returns.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/internal/pause"
)

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
