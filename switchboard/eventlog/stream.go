package eventlog

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/internal/pause"
)

// Stream is the log of nodes that share a broker: a stream queue bound to
// the topic exchange the nodes publish on, so that services outside the
// switchboard can bind their own queues to the same routing keys.
type Stream struct {
	b        bus.Bus
	queue    string
	bindings []string
	keep     bus.Retention
}

// WithRetention sets the retention policy the stream is declared with
// when it does not exist yet (bus.Retention); an existing stream keeps
// its own. It returns s.
func (s *Stream) WithRetention(r bus.Retention) *Stream {
	s.keep = r
	return s
}

// NewStream returns the log kept in b's stream queue, fed by the keys
// that match bindings. The caller closes b.
func NewStream(b bus.Bus, queue string, bindings []string) *Stream {
	return &Stream{b: b, queue: queue, bindings: bindings}
}

// Name implements Log.
func (s *Stream) Name() string { return "stream" }

// Ready implements Log: the bus is connected.
func (s *Stream) Ready() error { return s.b.Ready() }

// Append implements Log: a publish with a publisher confirm. Until the
// stream is declared (by the first Subscribe), nothing is routed to it and
// Append returns bus.ErrUnroutable.
func (s *Stream) Append(ctx context.Context, key string, body []byte) error {
	return s.b.Publish(ctx, key, body)
}

// Trim implements Log: the broker's retention policy removes old entries.
func (s *Stream) Trim(context.Context, int64) error { return nil }

// ErrNoHead is returned by Head when the bus cannot read a stream's head.
var ErrNoHead = errors.New("eventlog: the bus cannot read a stream's first entry")

// Head implements Log.
func (s *Stream) Head(ctx context.Context) (Entry, error) {
	heads, ok := s.b.(bus.StreamHead)
	if !ok {
		return Entry{}, ErrNoHead
	}
	d, err := heads.Head(ctx, s.queue)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Offset: d.Offset, Key: d.Key, Body: d.Body}, nil
}

// Subscribe implements Log. The stream is declared (and bound) before it
// returns.
func (s *Stream) Subscribe(ctx context.Context, from int64, h Handler) (Subscription, error) {
	sub, err := s.b.Subscribe(ctx, bus.SubscribeOptions{
		Queue:     s.queue,
		Bindings:  s.bindings,
		Stream:    true,
		Offset:    max(from, 0),
		Retention: s.keep,
		// Retries happen here, in order (Handler): the bus sees an error
		// only when the subscription closes.
		RetryDelay: retryDelay,
	}, func(ctx context.Context, d bus.Delivery) error {
		e := Entry{Offset: d.Offset, Key: d.Key, Body: d.Body}
		for {
			err := h(ctx, e)
			if err == nil {
				return nil
			}
			if !pause.For(ctx, retryDelay) {
				return err
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to the %s stream: %w", s.queue, err)
	}
	return sub, nil
}
