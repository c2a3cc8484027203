// Package bus is the switchboard's message bus: topic-routed publish and
// subscribe with at-least-once delivery, behind one small interface with two
// implementations that pass the same conformance suite (package bustest):
//
//   - Memory, the in-process bus of a node that runs alone (navigation
//     analytics and announcements; its conversation and routing events go
//     through its local log, package eventlog);
//   - amqpbus.Bus, RabbitMQ through amqp091-go, used when nodes scale out.
//
// Routing follows AMQP topic exchanges: a routing key is a dot-separated list
// of words; in a binding pattern `*` matches exactly one word and `#` zero or
// more words (see Match).
//
// Delivery is at least once. A Handler returning nil acknowledges the
// message; any other error asks for a redelivery after a delay; Permanent
// errors and messages that failed MaxAttempts times are dead-lettered, never
// silently dropped. Consumers must therefore be idempotent: Delivery.Redelivered
// says the message may have been seen before.
//
// Ordering: messages published one after another by one goroutine reach a
// subscription's handler in publish order (per key and in total) as long as
// every handler call succeeds; a message that is retried is redelivered after
// the ones behind it. Competing consumers on one named queue share the work
// and give no ordering across consumers.
//
// Concurrency contract: every method of Bus and Subscription is safe for
// concurrent use. Each subscription calls its Handler from a single goroutine,
// one delivery at a time. Close (of a Subscription or of the Bus) cancels the
// context passed to running handlers and waits for them to return.
package bus

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors.
var (
	// ErrClosed is returned by operations on a closed Bus or Subscription.
	ErrClosed = errors.New("bus: closed")
	// ErrUnroutable is returned by Publish when no queue is bound to the key
	// (RabbitMQ: the mandatory message was returned).
	ErrUnroutable = errors.New("bus: unroutable: no queue bound for key")
	// ErrNoQueue is returned by StreamHead.Head when the stream does not
	// exist (RabbitMQ: 404 NOT_FOUND).
	ErrNoQueue = errors.New("bus: no such queue")
)

// Delivery is one message handed to a Handler.
type Delivery struct {
	Key         string
	Body        []byte
	Redelivered bool  // may have been seen before: consumers must be idempotent
	Offset      int64 // stream subscriptions only: position in the log; -1 otherwise
}

// A Handler processes one delivery. Returning nil acks the message. A
// returned error means "try again later": the message is redelivered after a
// delay. Permanent(err) means "never succeeds": the message is dead-lettered
// at once. After MaxAttempts failures a message is dead-lettered too.
//
// ctx is cancelled when the subscription or the bus is closing; a handler
// that gives up then leaves the message unacknowledged (RabbitMQ redelivers
// it to another consumer or after a restart).
type Handler func(ctx context.Context, d Delivery) error

type permanentError struct{ err error }

func (p permanentError) Error() string { return "permanent: " + p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as one that retrying cannot fix: the message is
// dead-lettered at once. Permanent(nil) returns nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was made by Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// SubscribeOptions describe a subscription. The zero value of each field is
// documented with it.
type SubscribeOptions struct {
	// Queue "" = a private queue for this subscriber: every private
	// subscriber gets its own copy of each message, and the queue is deleted
	// when the subscription closes. A name = a durable queue shared by all
	// subscribers with that name (competing consumers); it survives restarts
	// and keeps collecting messages while nobody consumes.
	Queue string
	// Bindings are topic patterns; at least one is required.
	Bindings []string
	// Prefetch bounds unacknowledged deliveries in flight (RabbitMQ basic.qos).
	// 0 = 256; otherwise at least 100.
	Prefetch int
	// MaxAttempts is how many times a failing message is handed to the
	// handler before it is dead-lettered. 0 = 5.
	MaxAttempts int
	// RetryDelay is how long a failed message waits before redelivery.
	// 0 = the implementation's default (Memory: 50ms, RabbitMQ: 1s).
	RetryDelay time.Duration

	// Stream=true binds a durable log (RabbitMQ stream queue named Queue)
	// and starts delivering from Offset (0 = first, -1 = next new message,
	// n = from position n); deliveries carry Offset. Memory does not
	// implement streams.
	Stream bool
	Offset int64
	// Retention applies only when the subscription declares a stream that
	// does not exist yet: a stream's arguments cannot change once it is
	// declared, so an existing stream keeps the retention it was made with.
	Retention Retention
}

// Retention is a stream's retention policy (RabbitMQ x-max-age,
// x-max-length-bytes, x-stream-max-segment-size-bytes). The zero value
// keeps everything. The broker removes whole segments, oldest first, so a
// stream holds at least MaxBytes (or MaxAge) and at most one segment more.
type Retention struct {
	MaxAge       time.Duration // 0 = no age limit; otherwise at least a second
	MaxBytes     int64         // 0 = no size limit
	SegmentBytes int64         // 0 = the broker's default (500 MB)
}

// IsZero reports whether r keeps everything.
func (r Retention) IsZero() bool { return r == Retention{} }

// Validate checks the options that both implementations share and fills in
// their defaults. Implementations call it from Subscribe.
func (o *SubscribeOptions) Validate() error {
	if len(o.Bindings) == 0 {
		return errors.New("bus: subscribe: at least one binding is required")
	}
	for _, b := range o.Bindings {
		if err := ValidPattern(b); err != nil {
			return err
		}
	}
	switch {
	case o.Prefetch == 0:
		o.Prefetch = 256
	case o.Prefetch < 100:
		return errors.New("bus: subscribe: Prefetch must be 0 (default 256) or at least 100")
	case o.Prefetch > 65535:
		return errors.New("bus: subscribe: Prefetch must be at most 65535")
	}
	switch {
	case o.MaxAttempts == 0:
		o.MaxAttempts = 5
	case o.MaxAttempts < 0:
		return errors.New("bus: subscribe: MaxAttempts must not be negative")
	}
	if o.RetryDelay < 0 {
		return errors.New("bus: subscribe: RetryDelay must not be negative")
	}
	if o.Stream {
		if o.Queue == "" {
			return errors.New("bus: subscribe: a stream subscription needs a Queue name")
		}
		if o.Offset < -1 {
			return errors.New("bus: subscribe: stream Offset must be -1 (next), 0 (first) or a position")
		}
		if r := o.Retention; r.MaxAge < 0 || (r.MaxAge > 0 && r.MaxAge < time.Second) || r.MaxBytes < 0 || r.SegmentBytes < 0 {
			return errors.New("bus: subscribe: Retention: MaxAge must be 0 or at least 1s, sizes must not be negative")
		}
	}
	return nil
}

// StreamLast is implemented by buses that keep streams (amqpbus.Bus).
type StreamLast interface {
	// Last returns the entries of the stream queue's last chunk (the
	// latest published, and any published with it), waiting at most idle
	// for more once the first arrives. It returns ErrNoQueue when the
	// stream does not exist, and no entries when it is empty.
	Last(ctx context.Context, queue string, idle time.Duration) ([]Delivery, error)
}

// StreamHead is implemented by buses that keep streams (amqpbus.Bus; Memory
// has no streams).
type StreamHead interface {
	// Head returns the first entry the stream subscribed to as queue
	// (SubscribeOptions.Queue) still holds, waiting until it holds one or
	// ctx ends. It returns ErrNoQueue when the stream does not exist. The
	// first entry identifies a stream: a stream deleted and declared again
	// starts over at offset 0 with other entries.
	Head(ctx context.Context, queue string) (Delivery, error)
}

// Subscription is an active subscription.
type Subscription interface {
	// Close stops deliveries, waits for the running handler call to return
	// and (for a private queue) deletes the queue. Idempotent.
	Close() error
}

// DeadLetter is a message that was given up on.
type DeadLetter struct {
	Key      string
	Body     []byte
	Queue    string // the queue it was consumed from, when known
	Reason   string // the handler's error, or the broker's reason
	Attempts int    // handler calls made, when known
}

// Bus is the message bus. See the package comment for semantics.
type Bus interface {
	// Publish returns after the message is safely accepted (RabbitMQ:
	// publisher confirm received; persistent delivery mode). Safe for many
	// concurrent callers. ErrUnroutable when no queue is bound for key.
	// Honors ctx.
	Publish(ctx context.Context, key string, body []byte) error
	// Subscribe binds a queue and starts delivering to h. When it returns,
	// the bindings are in place: messages published afterwards are routed.
	Subscribe(ctx context.Context, opts SubscribeOptions, h Handler) (Subscription, error)
	// DeadLetters returns a snapshot of the dead-lettered messages (oldest
	// first, at most an implementation-defined number) without removing them.
	DeadLetters(ctx context.Context) ([]DeadLetter, error)
	// Ready returns nil when the bus can publish (connected).
	Ready() error
	// Close stops all subscriptions, waits for running handlers to return,
	// and releases resources. Idempotent.
	Close() error
}
