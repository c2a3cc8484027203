// Package eventlog is the switchboard's one ordered log: every event that
// changes a conversation or routing is appended to it and takes effect
// only when a node applies it, in log order. Two implementations pass one
// conformance suite (package logtest):
//
//   - Local, on the node's LevelDB store, for a node that runs alone: an
//     append is one synced group-committed write, and the offset is the
//     store's log sequence;
//   - Stream, a RabbitMQ stream fed by a topic exchange (through
//     package bus), for nodes that share a broker: an append is a publish
//     with a publisher confirm, the offset is the stream's.
//
// The node does not know which one it runs on, except where it chooses
// it, at construction.
//
// # Guarantees
//
// Append returns once the entry is durable (Local: fsynced; Stream:
// confirmed by the broker). Entries get consecutive offsets in one total
// order that every subscriber sees. A subscription delivers entries one at
// a time, in offset order, from the offset it asks for (or the first one
// the log still holds, when it asks for one the log no longer holds: the
// subscriber sees the jump and decides). A handler error retries the same
// entry. Head identifies the log: a log deleted and made again starts
// over with other entries at its first offset.
package eventlog

import (
	"context"
	"errors"
)

// ErrClosed is returned by operations on a closed log or subscription.
var ErrClosed = errors.New("eventlog: closed")

// Entry is one log entry.
type Entry struct {
	Offset int64
	Key    string // a routing key of the design: sms.in.<digits>, route.release.<agent>, ...
	Body   []byte // JSON
	// Applied is set only by Local, on an entry that AppendApplied wrote
	// in this process, handed over from memory: what that write stored.
	// nil for every entry read from a store or a broker.
	Applied *Applied
}

// Handler applies one entry. nil moves on to the next; an error retries
// this entry (after a short delay) until ctx ends.
type Handler func(ctx context.Context, e Entry) error

// Subscription is a running subscription.
type Subscription interface {
	// Close stops deliveries and waits for a running handler call.
	// Idempotent.
	Close() error
}

// Log is the ordered event log. Its methods are safe for concurrent use.
type Log interface {
	// Append makes an entry durable at the end of the log. The log may
	// keep body (and hand it to subscribers): do not change it after.
	Append(ctx context.Context, key string, body []byte) error
	// Subscribe delivers the entries from offset from (0 = the first) to
	// h, in order, until the subscription is closed or ctx ends.
	Subscribe(ctx context.Context, from int64, h Handler) (Subscription, error)
	// Head returns the first entry the log holds, waiting for one while it
	// is empty, until ctx ends.
	Head(ctx context.Context) (Entry, error)
	// Trim tells the log that entries before offset before are applied
	// and checkpointed: Local deletes them; Stream leaves them to the
	// broker's retention policy.
	Trim(ctx context.Context, before int64) error
	// Ready returns nil when Append can succeed now (Stream: connected).
	Ready() error
	// Name says which log this is, for logs and /readyz.
	Name() string
}
