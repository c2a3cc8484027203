// Package bustest is the conformance suite every bus.Bus implementation must
// pass (Run), plus helpers for tests against a real RabbitMQ broker
// (AMQPURL, UniqueName, DeleteOnCleanup).
//
// The suite's tests run sequentially; each gets a fresh Bus from the factory
// and must leave no goroutines behind once that Bus is closed.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"go.uber.org/goleak"
)

// Factory returns a fresh, empty Bus for one test. It should register any
// cleanup (deleting broker objects) with t.Cleanup; the suite closes the Bus.
type Factory func(t *testing.T) bus.Bus

// Options tune Run for an implementation.
type Options struct {
	// IgnoreGoroutines are goleak options for background goroutines of a
	// library that outlive the Bus (none are needed for amqp091-go 1.16).
	IgnoreGoroutines []goleak.Option
	// Timeout bounds each wait for a delivery. 0 = 5s.
	Timeout time.Duration
}

// Run runs the conformance suite against the buses newBus makes.
func Run(t *testing.T, newBus Factory, opts ...Options) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, b bus.Bus, o Options)
	}{
		{"TopicTable", testTopicTable},
		{"Unroutable", testUnroutable},
		{"PerKeyOrder", testPerKeyOrder},
		{"RetryThenAck", testRetryThenAck},
		{"PoisonDeadLettered", testPoison},
		{"PermanentDeadLettered", testPermanent},
		{"CompetingConsumers", testCompeting},
		{"PrivateCopies", testPrivateCopies},
		{"SubscriptionCloseWaitsForHandler", testSubCloseWaits},
		{"BusCloseWaitsForHandler", testBusCloseWaits},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Registered first so it runs last, after the bus is closed.
			before := goleak.IgnoreCurrent()
			t.Cleanup(func() {
				if !t.Failed() {
					goleak.VerifyNone(t, append([]goleak.Option{before}, o.IgnoreGoroutines...)...)
				}
			})
			b := newBus(t)
			t.Cleanup(func() { _ = b.Close() })
			tt.fn(t, b, o)
		})
	}
}

// WaitFor polls cond every few milliseconds until it is true or timeout
// passes, then fails the test with msg.
func WaitFor(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, msg)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recorder collects deliveries.
type recorder struct {
	mu  sync.Mutex
	got []bus.Delivery
}

func (r *recorder) handle(_ context.Context, d bus.Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
	return nil
}

func (r *recorder) snapshot() []bus.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) has(body string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.got {
		if string(d.Body) == body {
			return true
		}
	}
	return false
}

func mustSubscribe(t *testing.T, b bus.Bus, opts bus.SubscribeOptions, h bus.Handler) bus.Subscription {
	t.Helper()
	s, err := b.Subscribe(ctxT(t), opts, h)
	if err != nil {
		t.Fatalf("Subscribe(%+v): %v", opts, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustPublish(t testing.TB, ctx context.Context, b bus.Bus, key, body string) {
	t.Helper()
	if err := b.Publish(ctx, key, []byte(body)); err != nil {
		t.Fatalf("Publish(%q, %q): %v", key, body, err)
	}
}

// testTopicTable is the classic RabbitMQ tutorial table. After the five keys
// a fence message is published on a key every binding matches; since one
// publisher's messages stay in order in a queue, once each subscriber has seen
// the fence it has seen everything it will ever get, so the check is exact
// without sleeping.
func testTopicTable(t *testing.T, b bus.Bus, o Options) {
	keys := []string{"animals.dogs.poodles", "animals.dogs.dachshund", "animals.cats.shorthaired", "animals.dogs.shorthaired", "animals.misc"}
	const fenceKey = "animals.cats.shorthaired"
	want := map[string][]string{
		"animals.*.shorthaired": {"animals.cats.shorthaired", "animals.dogs.shorthaired"},
		"#":                     keys,
		"*.cats.*":              {"animals.cats.shorthaired"},
	}
	recs := map[string]*recorder{}
	for pattern := range want {
		r := &recorder{}
		recs[pattern] = r
		mustSubscribe(t, b, bus.SubscribeOptions{Bindings: []string{pattern}}, r.handle)
	}
	ctx := ctxT(t)
	for _, k := range keys {
		mustPublish(t, ctx, b, k, "msg "+k)
	}
	mustPublish(t, ctx, b, fenceKey, "fence")
	for pattern, wantKeys := range want {
		t.Run(pattern, func(t *testing.T) {
			r := recs[pattern]
			WaitFor(t, o.Timeout, "fence at "+pattern, func() bool { return r.has("fence") })
			var got []string
			for _, d := range r.snapshot() {
				if string(d.Body) == "fence" {
					continue
				}
				if string(d.Body) != "msg "+d.Key {
					t.Errorf("delivery key %q has body %q", d.Key, d.Body)
				}
				if d.Offset != -1 {
					t.Errorf("non-stream delivery has Offset %d, want -1", d.Offset)
				}
				got = append(got, d.Key)
			}
			if !slices.Equal(got, wantKeys) {
				t.Errorf("binding %q got %q, want %q", pattern, got, wantKeys)
			}
		})
	}
}

func testUnroutable(t *testing.T, b bus.Bus, o Options) {
	r := &recorder{}
	mustSubscribe(t, b, bus.SubscribeOptions{Bindings: []string{"routed.*"}}, r.handle)
	ctx := ctxT(t)
	if err := b.Publish(ctx, "nobody.listens", []byte("x")); !errors.Is(err, bus.ErrUnroutable) {
		t.Fatalf("Publish to an unbound key = %v, want ErrUnroutable", err)
	}
	mustPublish(t, ctx, b, "routed.yes", "y")
	WaitFor(t, o.Timeout, "routed message", func() bool { return r.has("y") })
	if got := len(r.snapshot()); got != 1 {
		t.Fatalf("got %d deliveries, want 1", got)
	}
}

// testPerKeyOrder publishes 1,000 messages on 3 keys, one sequential
// publisher per key, all concurrently, and checks each key arrives in order.
func testPerKeyOrder(t *testing.T, b bus.Bus, o Options) {
	const total = 1000
	keys := []string{"order.a", "order.b", "order.c"}
	r := &recorder{}
	mustSubscribe(t, b, bus.SubscribeOptions{Bindings: []string{"order.#"}}, r.handle)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	perKey := map[string]int{}
	for i := range total {
		perKey[keys[i%len(keys)]]++
	}
	errs := make(chan error, len(keys))
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perKey[k] {
				if err := b.Publish(ctx, k, []byte(strconv.Itoa(i))); err != nil {
					errs <- fmt.Errorf("publish %s %d: %w", k, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	WaitFor(t, o.Timeout, "1000 deliveries", func() bool { return len(r.snapshot()) >= total })
	next := map[string]int{}
	for _, d := range r.snapshot() {
		n, err := strconv.Atoi(string(d.Body))
		if err != nil {
			t.Fatalf("bad body %q", d.Body)
		}
		if n != next[d.Key] {
			t.Fatalf("key %s: got %d, want %d (out of order or duplicated)", d.Key, n, next[d.Key])
		}
		next[d.Key]++
	}
	for _, k := range keys {
		if next[k] != perKey[k] {
			t.Errorf("key %s: got %d messages, want %d", k, next[k], perKey[k])
		}
	}
}

// counter counts handler calls per body and lets a test decide the result.
type counter struct {
	mu     sync.Mutex
	calls  map[string]int
	redel  map[string][]bool
	acked  map[string]bool
	result func(body string, call int) error
}

func newCounter(result func(body string, call int) error) *counter {
	return &counter{calls: map[string]int{}, redel: map[string][]bool{}, acked: map[string]bool{}, result: result}
}

func (c *counter) handle(_ context.Context, d bus.Delivery) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	body := string(d.Body)
	c.calls[body]++
	c.redel[body] = append(c.redel[body], d.Redelivered)
	err := c.result(body, c.calls[body])
	if err == nil {
		c.acked[body] = true
	}
	return err
}

func (c *counter) get(body string) (calls int, redelivered []bool, acked bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[body], slices.Clone(c.redel[body]), c.acked[body]
}

func testRetryThenAck(t *testing.T, b bus.Bus, o Options) {
	c := newCounter(func(body string, call int) error {
		if body == "flaky" && call == 1 {
			return errors.New("temporary failure")
		}
		return nil
	})
	mustSubscribe(t, b, bus.SubscribeOptions{Bindings: []string{"retry.#"}, RetryDelay: 20 * time.Millisecond}, c.handle)
	ctx := ctxT(t)
	mustPublish(t, ctx, b, "retry.x", "flaky")
	WaitFor(t, o.Timeout, "flaky message acked", func() bool { _, _, acked := c.get("flaky"); return acked })
	// Nothing more may come for it: a fence published now arrives after any
	// stray redelivery would have been queued.
	mustPublish(t, ctx, b, "retry.x", "fence")
	WaitFor(t, o.Timeout, "fence", func() bool { _, _, acked := c.get("fence"); return acked })
	calls, redel, _ := c.get("flaky")
	if calls != 2 || !slices.Equal(redel, []bool{false, true}) {
		t.Fatalf("flaky: %d calls with Redelivered %v, want 2 calls [false true]", calls, redel)
	}
	expectNoDeadLetters(t, b)
}

func expectNoDeadLetters(t *testing.T, b bus.Bus) {
	t.Helper()
	dls, err := b.DeadLetters(ctxT(t))
	if err != nil {
		t.Fatalf("DeadLetters: %v", err)
	}
	if len(dls) != 0 {
		t.Fatalf("unexpected dead letters: %+v", dls)
	}
}

func waitDeadLetter(t *testing.T, b bus.Bus, o Options, body string) bus.DeadLetter {
	t.Helper()
	var found bus.DeadLetter
	WaitFor(t, o.Timeout, "dead letter "+body, func() bool {
		dls, err := b.DeadLetters(ctxT(t))
		if err != nil {
			t.Fatalf("DeadLetters: %v", err)
		}
		for _, d := range dls {
			if string(d.Body) == body {
				found = d
				return true
			}
		}
		return false
	})
	return found
}

func testPoison(t *testing.T, b bus.Bus, o Options) {
	c := newCounter(func(body string, call int) error {
		if body == "poison" {
			return fmt.Errorf("cannot digest call %d", call)
		}
		return nil
	})
	mustSubscribe(t, b, bus.SubscribeOptions{Queue: "poisoned", Bindings: []string{"poison.#"}, MaxAttempts: 3, RetryDelay: 10 * time.Millisecond}, c.handle)
	ctx := ctxT(t)
	mustPublish(t, ctx, b, "poison.p", "poison")
	mustPublish(t, ctx, b, "poison.p", "good")
	d := waitDeadLetter(t, b, o, "poison")
	if d.Key != "poison.p" || !strings.Contains(d.Reason, "cannot digest") {
		t.Errorf("dead letter = %+v, want key poison.p and the handler's error as reason", d)
	}
	calls, _, acked := c.get("poison")
	if calls != 3 || acked {
		t.Errorf("poison handled %d times (acked %v), want exactly MaxAttempts=3 failures", calls, acked)
	}
	WaitFor(t, o.Timeout, "good message", func() bool { _, _, acked := c.get("good"); return acked })
}

func testPermanent(t *testing.T, b bus.Bus, o Options) {
	c := newCounter(func(body string, call int) error {
		return bus.Permanent(errors.New("malformed body"))
	})
	mustSubscribe(t, b, bus.SubscribeOptions{Bindings: []string{"perm.#"}}, c.handle)
	mustPublish(t, ctxT(t), b, "perm.x", "bad")
	d := waitDeadLetter(t, b, o, "bad")
	if d.Key != "perm.x" || !strings.Contains(d.Reason, "malformed body") {
		t.Errorf("dead letter = %+v", d)
	}
	if calls, _, _ := c.get("bad"); calls != 1 {
		t.Errorf("permanent failure handled %d times, want 1", calls)
	}
}

// testCompeting: two subscribers on one named queue share 200 messages, no
// loss. Each subscriber's first call waits until the other has received one,
// which proves both take part without relying on timing.
func testCompeting(t *testing.T, b bus.Bus, o Options) {
	const n = 200
	var received [2]atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	for i := range 2 {
		h := func(ctx context.Context, d bus.Delivery) error {
			if received[i].Add(1) == 1 {
				deadline := time.Now().Add(o.Timeout)
				for received[1-i].Load() == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
			}
			mu.Lock()
			seen[string(d.Body)]++
			mu.Unlock()
			return nil
		}
		mustSubscribe(t, b, bus.SubscribeOptions{Queue: "work", Bindings: []string{"work.*"}}, h)
	}
	ctx := ctxT(t)
	for i := range n {
		mustPublish(t, ctx, b, "work.item", strconv.Itoa(i))
	}
	WaitFor(t, o.Timeout, "all work items", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	if received[0].Load() == 0 || received[1].Load() == 0 {
		t.Errorf("work not shared: %d / %d", received[0].Load(), received[1].Load())
	}
}

func testPrivateCopies(t *testing.T, b bus.Bus, o Options) {
	const n = 50
	r1, r2 := &recorder{}, &recorder{}
	mustSubscribe(t, b, bus.SubscribeOptions{Bindings: []string{"presence.#"}}, r1.handle)
	s2 := mustSubscribe(t, b, bus.SubscribeOptions{Bindings: []string{"presence.*"}}, r2.handle)
	ctx := ctxT(t)
	for i := range n {
		mustPublish(t, ctx, b, "presence.alice", strconv.Itoa(i))
	}
	for _, r := range []*recorder{r1, r2} {
		WaitFor(t, o.Timeout, "copies", func() bool { return len(r.snapshot()) >= n })
		for i, d := range r.snapshot() {
			if string(d.Body) != strconv.Itoa(i) {
				t.Fatalf("copy %d = %q", i, d.Body)
			}
		}
	}
	// A closed private subscription's queue is gone: its key stops routing.
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, ctx, b, "presence.bob", "after")
	WaitFor(t, o.Timeout, "r1 after", func() bool { return r1.has("after") })
	if r2.has("after") {
		t.Error("closed subscription still received")
	}
}

// blockingHandler starts, then waits for its ctx to be cancelled (which Close
// does first), and only then returns; Close must not return before it has.
type blockingHandler struct {
	started  chan struct{}
	returned atomic.Bool
	once     sync.Once
}

func (h *blockingHandler) handle(ctx context.Context, d bus.Delivery) error {
	h.once.Do(func() { close(h.started) })
	<-ctx.Done()
	time.Sleep(20 * time.Millisecond) // a handler finishing its work
	h.returned.Store(true)
	return ctx.Err()
}

func testSubCloseWaits(t *testing.T, b bus.Bus, o Options) {
	h := &blockingHandler{started: make(chan struct{})}
	s := mustSubscribe(t, b, bus.SubscribeOptions{Bindings: []string{"slow.#"}}, h.handle)
	mustPublish(t, ctxT(t), b, "slow.x", "x")
	select {
	case <-h.started:
	case <-time.After(o.Timeout):
		t.Fatal("handler not called")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !h.returned.Load() {
		t.Fatal("Subscription.Close returned before the handler did")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testBusCloseWaits(t *testing.T, b bus.Bus, o Options) {
	h := &blockingHandler{started: make(chan struct{})}
	mustSubscribe(t, b, bus.SubscribeOptions{Queue: "slowq", Bindings: []string{"slow.#"}}, h.handle)
	mustPublish(t, ctxT(t), b, "slow.x", "x")
	select {
	case <-h.started:
	case <-time.After(o.Timeout):
		t.Fatal("handler not called")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !h.returned.Load() {
		t.Fatal("Bus.Close returned before the handler did")
	}
}

func testClosed(t *testing.T, b bus.Bus, o Options) {
	if err := b.Ready(); err != nil {
		t.Fatalf("Ready on a fresh bus: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := ctxT(t)
	if err := b.Publish(ctx, "a.b", []byte("x")); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe(ctx, bus.SubscribeOptions{Bindings: []string{"#"}}, func(context.Context, bus.Delivery) error { return nil }); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
	if err := b.Ready(); err == nil {
		t.Error("Ready after Close = nil")
	}
}
