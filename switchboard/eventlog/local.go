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

// Local is the log of a node that runs alone, on its store (store.AppendLog).
type Local struct {
	st *store.Store

	mu   sync.Mutex
	wake chan struct{} // closed (and replaced) by every append
}

// NewLocal returns the local log kept in st. The caller closes st.
func NewLocal(st *store.Store) *Local {
	return &Local{st: st, wake: make(chan struct{})}
}

// Name implements Log.
func (l *Local) Name() string { return "local" }

// Ready implements Log: the store is open.
func (l *Local) Ready() error { return l.st.Ready() }

// Append implements Log: one synced write, shared with concurrent appends.
func (l *Local) Append(ctx context.Context, key string, body []byte) error {
	if _, err := l.st.AppendLog(ctx, key, body); err != nil {
		return err
	}
	l.notify()
	return nil
}

func (l *Local) notify() {
	l.mu.Lock()
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
			return Entry(e), nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		}
	}
}

// Trim implements Log: it deletes the entries before before.
func (l *Local) Trim(ctx context.Context, before int64) error {
	return l.st.TrimLog(ctx, before)
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
	var batch []store.LogEntry
	for ctx.Err() == nil {
		wake := l.waitChan() // before reading: an append after the read wakes us
		batch = batch[:0]
		err := l.st.ReadLog(next, readBatch, func(e store.LogEntry) error {
			batch = append(batch, e)
			return nil
		})
		if err != nil {
			if !pause.For(ctx, retryDelay) {
				return
			}
			continue
		}
		for _, e := range batch {
			for {
				if err := h(ctx, Entry(e)); err == nil {
					break
				}
				if !pause.For(ctx, retryDelay) {
					return
				}
			}
			next = e.Offset + 1
		}
		if len(batch) == readBatch {
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
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
