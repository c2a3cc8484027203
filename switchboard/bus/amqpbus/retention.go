package amqpbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchboard/switchboard/switchboard/bus"
)

// retentionArgs are the queue arguments of a new stream kept under r.
func retentionArgs(r bus.Retention) amqp.Table {
	args := amqp.Table{"x-queue-type": "stream"}
	if r.MaxAge > 0 {
		args["x-max-age"] = strconv.FormatInt(int64(r.MaxAge/time.Second), 10) + "s"
	}
	if r.MaxBytes > 0 {
		args["x-max-length-bytes"] = r.MaxBytes
	}
	if r.SegmentBytes > 0 {
		args["x-stream-max-segment-size-bytes"] = r.SegmentBytes
	}
	return args
}

// streamExists asks the broker, on a channel of its own (a passive declare
// of a missing queue closes its channel), whether queue exists.
func streamExists(conn *amqp.Connection, queue string) (bool, error) {
	ch, err := conn.Channel()
	if err != nil {
		return false, err
	}
	defer ch.Close()
	_, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	var aerr *amqp.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &aerr) && aerr.Code == amqp.NotFound:
		return false, nil
	default:
		return false, err
	}
}

// Last implements bus.StreamLast: a consumer of its own that starts at
// "last" (the stream's last chunk) and is cancelled once idle passes with
// no further delivery.
func (b *Bus) Last(ctx context.Context, queue string, idle time.Duration) ([]bus.Delivery, error) {
	name := b.opts.QueuePrefix + queue
	fail := func(err error) ([]bus.Delivery, error) {
		return nil, fmt.Errorf("amqpbus: last of %s: %w", name, err)
	}
	conn, err := b.waitConn(ctx)
	if err != nil {
		return fail(err)
	}
	exists, err := streamExists(conn, name)
	if err != nil {
		return fail(err)
	}
	if !exists {
		return fail(bus.ErrNoQueue)
	}
	ch, err := conn.Channel()
	if err != nil {
		return fail(err)
	}
	defer ch.Close()
	if err := ch.Qos(16, 0, false); err != nil {
		return fail(err)
	}
	const tag = "switchboard-last"
	deliveries, err := ch.Consume(name, tag, false, false, false, false, amqp.Table{"x-stream-offset": "last"})
	if err != nil {
		if strings.Contains(err.Error(), "no queue") {
			return fail(bus.ErrNoQueue)
		}
		return fail(err)
	}
	defer ch.Cancel(tag, false)
	var out []bus.Delivery
	// An empty stream delivers nothing: wait for a first entry no longer
	// than for a next one.
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return fail(errors.New("the consumer was cancelled"))
			}
			off, ok := streamOffset(d.Headers)
			if !ok {
				return fail(errors.New("delivery without x-stream-offset (not a stream?)"))
			}
			d.Ack(false)
			out = append(out, bus.Delivery{Key: d.RoutingKey, Body: d.Body, Offset: off})
			timer.Reset(idle)
		case <-timer.C:
			return out, nil
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
}
