package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// MemoryOptions configure NewMemory. Every zero value means the default.
type MemoryOptions struct {
	// QueueSize bounds each queue; Publish blocks (honoring ctx) while a
	// matching queue is full. 0 = 65536.
	QueueSize int
	// RetryDelay is the default delay before a failed message is redelivered.
	// 0 = 50ms.
	RetryDelay time.Duration
	// MaxDeadLetters is how many dead letters are kept (oldest dropped from
	// memory, but every one is logged). 0 = 10000.
	MaxDeadLetters int
	// Logger receives dead letters and errors. nil = slog.Default().
	Logger *slog.Logger
}

// Memory is the in-process Bus: one bounded queue per subscription (or per
// named queue, shared by its subscribers), one delivery goroutine per
// subscriber, retries after a short delay and dead letters kept in memory.
// Nothing survives the process: it is the bus of a single embedded node,
// where the store is the source of truth.
type Memory struct {
	opts MemoryOptions
	log  *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine started by the bus

	mu     sync.RWMutex
	closed bool
	queues map[string]*memQueue // by name; private queues get a unique name
	nextID uint64
	dead   []DeadLetter
}

type memQueue struct {
	name     string
	private  bool
	patterns []string // union of the bindings of every subscriber
	ch       chan memMsg
	done     chan struct{} // closed when a private queue is deleted
}

type memMsg struct {
	key      string
	body     []byte
	attempts int // failed handler calls so far
}

// NewMemory returns an in-process bus. It panics on invalid options (the
// only invalid ones are negative numbers, which are programming errors).
func NewMemory(opts MemoryOptions) *Memory {
	if opts.QueueSize < 0 || opts.RetryDelay < 0 || opts.MaxDeadLetters < 0 {
		panic("bus: NewMemory: negative option")
	}
	if opts.QueueSize == 0 {
		opts.QueueSize = 65536
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = 50 * time.Millisecond
	}
	if opts.MaxDeadLetters == 0 {
		opts.MaxDeadLetters = 10000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Memory{
		opts:   opts,
		log:    opts.Logger.With("component", "bus.memory"),
		ctx:    ctx,
		cancel: cancel,
		queues: make(map[string]*memQueue),
	}
}

// Publish copies the message into every queue with a matching binding,
// blocking while one is full. A message is "accepted" once it is in every
// matching queue.
func (m *Memory) Publish(ctx context.Context, key string, body []byte) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return ErrClosed
	}
	var targets []*memQueue
	for _, q := range m.queues {
		for _, p := range q.patterns {
			if Match(p, key) {
				targets = append(targets, q)
				break
			}
		}
	}
	m.mu.RUnlock()
	if len(targets) == 0 {
		return fmt.Errorf("bus: publish %s: %w", key, ErrUnroutable)
	}
	// Each queue gets its own copy so a handler that mutates Body cannot
	// affect another subscriber or the caller.
	for _, q := range targets {
		msg := memMsg{key: key, body: append([]byte(nil), body...)}
		select {
		case q.ch <- msg:
		case <-q.done: // private queue deleted meanwhile: nobody to deliver to
		case <-ctx.Done():
			return fmt.Errorf("bus: publish %s: %w", key, ctx.Err())
		case <-m.ctx.Done():
			return ErrClosed
		}
	}
	return nil
}

// Subscribe implements Bus. Stream subscriptions are not supported.
func (m *Memory) Subscribe(ctx context.Context, opts SubscribeOptions, h Handler) (Subscription, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Stream {
		return nil, errors.New("bus: subscribe: the in-process bus has no streams")
	}
	if h == nil {
		return nil, errors.New("bus: subscribe: nil handler")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bus: subscribe: %w", err)
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = m.opts.RetryDelay
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var q *memQueue
	if opts.Queue == "" {
		m.nextID++
		q = &memQueue{name: fmt.Sprintf("private.%d", m.nextID), private: true}
	} else if q = m.queues[opts.Queue]; q == nil {
		q = &memQueue{name: opts.Queue}
	}
	if q.ch == nil {
		q.ch = make(chan memMsg, m.opts.QueueSize)
		q.done = make(chan struct{})
		m.queues[q.name] = q
	}
	// Copy on write: Publish reads patterns under RLock without copying.
	patterns := append([]string(nil), q.patterns...)
	for _, b := range opts.Bindings {
		if !contains(patterns, b) {
			patterns = append(patterns, b)
		}
	}
	q.patterns = patterns

	sctx, cancel := context.WithCancel(m.ctx)
	s := &memSub{m: m, q: q, opts: opts, h: h, ctx: sctx, cancel: cancel, done: make(chan struct{})}
	m.wg.Add(1)
	go s.run()
	return s, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// DeadLetters implements Bus.
func (m *Memory) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]DeadLetter(nil), m.dead...), nil
}

// Ready implements Bus.
func (m *Memory) Ready() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Close implements Bus.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

func (m *Memory) deadLetter(q *memQueue, msg memMsg, attempts int, err error) {
	d := DeadLetter{Key: msg.key, Body: msg.body, Queue: q.name, Reason: err.Error(), Attempts: attempts}
	m.log.Warn("message dead-lettered", "queue", q.name, "key", msg.key, "attempts", attempts, "err", err)
	m.mu.Lock()
	if len(m.dead) >= m.opts.MaxDeadLetters {
		m.dead = append(m.dead[:0], m.dead[1:]...)
	}
	m.dead = append(m.dead, d)
	m.mu.Unlock()
}

// retryLater puts msg back on its queue after delay, from a tracked goroutine
// so the subscriber goes on with the messages behind it.
func (m *Memory) retryLater(q *memQueue, msg memMsg, delay time.Duration) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-q.done:
			return
		case <-m.ctx.Done():
			return // the in-process bus keeps nothing across Close
		}
		select {
		case q.ch <- msg:
		case <-q.done:
		case <-m.ctx.Done():
		}
	}()
}

type memSub struct {
	m      *Memory
	q      *memQueue
	opts   SubscribeOptions
	h      Handler
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (s *memSub) run() {
	defer s.m.wg.Done()
	defer close(s.done)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.q.done:
			return
		case msg := <-s.q.ch:
			s.deliver(msg)
		}
	}
}

func (s *memSub) deliver(msg memMsg) {
	err := s.h(s.ctx, Delivery{Key: msg.key, Body: msg.body, Redelivered: msg.attempts > 0, Offset: -1})
	if err == nil {
		return
	}
	if s.ctx.Err() != nil {
		// Closing: the message is dropped with the in-process bus.
		s.m.log.Debug("handler failed while closing", "queue", s.q.name, "key", msg.key, "err", err)
		return
	}
	msg.attempts++
	if IsPermanent(err) || msg.attempts >= s.opts.MaxAttempts {
		s.m.deadLetter(s.q, msg, msg.attempts, err)
		return
	}
	s.m.retryLater(s.q, msg, s.opts.RetryDelay)
}

// Close implements Subscription.
func (s *memSub) Close() error {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		if s.q.private {
			s.m.mu.Lock()
			delete(s.m.queues, s.q.name)
			close(s.q.done)
			s.m.mu.Unlock()
		}
	})
	return nil
}
