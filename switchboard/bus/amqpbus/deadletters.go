package amqpbus

// This file holds the dead-letter queue: reading what the broker could not deliver.

import (
	"context"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/switchboard/switchboard/switchboard/bus"
)

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
