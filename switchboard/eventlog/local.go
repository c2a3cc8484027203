package eventlog

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard/switchboard/switchboard/internal/pause"
	"github.com/switchboard/switchboard/switchboard/store"
)

// readBatch bounds how many entries a Local subscription reads at once.
const readBatch = 512

// tailEntries is how many of the entries appended in this process a Local
// keeps in memory for its subscribers (about 1 MB of bodies): enough for a
// subscriber that keeps up (the applier queues about 1,300 entries at
// most), so that it does not read back what was just written. One further
// behind reads the store.
const tailEntries = 2048

// Local is the log of a node that runs alone, on its store (store.AppendLog).
//
// Its subscribers get the entries appended in this process from memory (the
// tail: the last tailEntries, by offset) and read the store only for the
// others: entries written before this process (a restart), ones that left
// the tail (a subscriber far behind), or ones whose append failed (its
// write may be durable all the same). Both give the same entries.
type Local struct {
	st *store.Store

	mu   sync.Mutex
	wake chan struct{} // closed (and replaced) by every append
	tail []slot        // tail[off%len] holds the entry at off, if appended here and not overwritten
	// Entries before below are read from the store: appended before this
	// process, trimmed (the store skips them), or below the store's next
	// offset when an append failed (its entry, if written, is there only).
	below   int64
	pending int // appends under way
}

type slot struct {
	e  Entry
	ok bool
}

// NewLocal returns the local log kept in st. The caller closes st.
func NewLocal(st *store.Store) *Local { return newLocal(st, tailEntries) }

func newLocal(st *store.Store, tail int) *Local {
	return &Local{st: st, wake: make(chan struct{}), tail: make([]slot, tail), below: st.LogNext()}
}

// Name implements Log.
func (l *Local) Name() string { return "local" }

// Ready implements Log: the store is open.
func (l *Local) Ready() error { return l.st.Ready() }

// Append implements Log: one synced write, shared with concurrent appends.
// The log keeps body.
func (l *Local) Append(ctx context.Context, key string, body []byte) error {
	l.begin()
	// Not cancelled: the write is done or failed when this returns, so
	// the tail knows which entries it will not get (end).
	off, err := l.st.AppendLog(context.WithoutCancel(ctx), key, body)
	l.end(Entry{Offset: off, Key: key, Body: body}, err)
	return err
}

// Applied is what AppendApplied stored with an entry, kept with it in the
// tail: a subscriber handed an entry with it need not store the entry's
// item again (Result is what applying it would return), nor decode the
// body (Value is the event it encodes, as the appender had it).
type Applied struct {
	Result store.LogResult
	Value  any
}

// AppendApplied is Append for an entry whose message the store keeps
// (store.AppendLogApplied): one synced write holds both. value is the
// event body encodes. It returns what the store did: Fresh false is a
// message stored before, and then nothing was appended.
func (l *Local) AppendApplied(ctx context.Context, key string, body []byte, item store.LogItem, value any) (store.LogResult, error) {
	l.begin()
	off, res, err := l.st.AppendLogApplied(context.WithoutCancel(ctx), key, body, item)
	e := Entry{Offset: off, Key: key, Body: body}
	if err == nil && res.Fresh {
		e.Applied = &Applied{Result: res, Value: value}
	}
	if err == nil && !res.Fresh {
		e.Offset = -1 // nothing appended
	}
	l.end(e, err)
	return res, err
}

func (l *Local) begin() {
	l.mu.Lock()
	l.pending++
	l.mu.Unlock()
}

// end records how an append ended (e: its entry, Offset -1 for none) and
// wakes the subscribers.
func (l *Local) end(e Entry, err error) {
	l.mu.Lock()
	l.pending--
	switch {
	case err != nil:
		l.below = max(l.below, l.st.LogNext())
	case e.Offset >= 0:
		l.tail[e.Offset%int64(len(l.tail))] = slot{e: e, ok: true}
	}
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

func (l *Local) waitChan() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake
}

// Head implements Log.
func (l *Local) Head(ctx context.Context) (Entry, error) {
	for {
		wake := l.waitChan()
		e, ok, err := l.st.LogHead()
		if err != nil {
			return Entry{}, err
		}
		if ok {
			return fromStore(e), nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		}
	}
}

func fromStore(e store.LogEntry) Entry { return Entry{Offset: e.Offset, Key: e.Key, Body: e.Body} }

// Trim implements Log: it deletes the entries before before.
func (l *Local) Trim(ctx context.Context, before int64) error {
	if err := l.st.TrimLog(ctx, before); err != nil {
		return err
	}
	l.mu.Lock()
	l.below = max(l.below, before)
	l.mu.Unlock()
	return nil
}

// Subscribe implements Log.
func (l *Local) Subscribe(ctx context.Context, from int64, h Handler) (Subscription, error) {
	if err := l.st.Ready(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &localSub{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		l.follow(ctx, max(from, 0), h)
	}()
	return s, nil
}

// follow delivers entries from next on until ctx ends.
func (l *Local) follow(ctx context.Context, next int64, h Handler) {
	var batch []Entry
	for ctx.Err() == nil {
		wake := l.waitChan() // before reading: an append after the read wakes us
		var read bool
		batch, read = l.fromTail(next, batch[:0])
		if read {
			err := l.st.ReadLog(next, readBatch, func(e store.LogEntry) error {
				batch = append(batch, fromStore(e))
				return nil
			})
			if err != nil {
				if !pause.For(ctx, retryDelay) {
					return
				}
				continue
			}
			l.fromMemory(batch)
		}
		for _, e := range batch {
			for {
				if err := h(ctx, e); err == nil {
					break
				}
				if !pause.For(ctx, retryDelay) {
					return
				}
			}
			next = e.Offset + 1
		}
		if len(batch) > 0 {
			continue // more may be there already
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		}
	}
}

// fromTail appends to batch the entries from next on that the tail holds,
// in order, up to readBatch of them. read says the entry at next is not,
// and will not be, in the tail: the store has it, if anyone.
func (l *Local) fromTail(next int64, batch []Entry) (_ []Entry, read bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if next < l.below {
		return batch, true
	}
	n := int64(len(l.tail))
	for len(batch) < readBatch {
		s := l.tail[next%n]
		if !s.ok || s.e.Offset != next {
			// Not there yet (its append is under way) or gone: a later
			// entry took its place, or it was written but not by this
			// log's appends (none under way, yet the store is past it).
			read = len(batch) == 0 && (s.ok && s.e.Offset > next || l.pending == 0 && l.st.LogNext() > next)
			break
		}
		batch = append(batch, s.e)
		next++
	}
	return batch, read
}

// fromMemory puts the tail's copy in place of the entries read back from
// the store that the tail holds (the same, and with what AppendApplied
// stored).
func (l *Local) fromMemory(batch []Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := int64(len(l.tail))
	for i, e := range batch {
		if s := l.tail[e.Offset%n]; s.ok && s.e.Offset == e.Offset {
			batch[i] = s.e
		}
	}
}

type localSub struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *localSub) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// retryDelay is how long a failed handler call or read waits.
const retryDelay = 100 * time.Millisecond
