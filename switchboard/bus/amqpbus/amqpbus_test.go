package amqpbus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/bus/amqpbus"
	"github.com/switchboard/switchboard/switchboard/bus/bustest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newBus dials a Bus with a unique exchange and queue prefix and deletes
// everything it declared when the test ends.
func newBus(t testing.TB, mod ...func(*amqpbus.Options)) *amqpbus.Bus {
	t.Helper()
	url := bustest.AMQPURL(t)
	name := bustest.UniqueName(t, "sbtest")
	opts := amqpbus.Options{
		URL:            url,
		Exchange:       name,
		QueuePrefix:    name + ".",
		ConnectionName: name,
		RetryDelay:     20 * time.Millisecond,
		ReconnectMin:   20 * time.Millisecond,
		ReconnectMax:   200 * time.Millisecond,
		Logger:         quiet,
	}
	for _, m := range mod {
		m(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := amqpbus.Dial(ctx, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	// Registered before Close so it runs after it (cleanups are LIFO).
	bustest.DeleteOnCleanup(t, url, b.Declared)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bus.Bus { return newBus(t) })
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts amqpbus.Options
		want string
	}{
		{"no URL", amqpbus.Options{}, "URL"},
		{"bad scheme", amqpbus.Options{URL: "http://u:secret@127.0.0.1/"}, "scheme"},
		{"negative heartbeat", amqpbus.Options{URL: "amqp://127.0.0.1/", Heartbeat: -1}, "Heartbeat"},
		{"window", amqpbus.Options{URL: "amqp://127.0.0.1/", ConfirmWindow: -3}, "ConfirmWindow"},
		{"backoff", amqpbus.Options{URL: "amqp://127.0.0.1/", ReconnectMin: time.Second, ReconnectMax: time.Millisecond}, "ReconnectMax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := amqpbus.Dial(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secret") {
				t.Fatalf("Dial error = %v, want one naming %s without the password", err, tt.want)
			}
		})
	}
}

// TestDialFailureNamesURLWithoutPassword dials a loopback port nobody listens on.
func TestDialFailureNamesURLWithoutPassword(t *testing.T) {
	defer goleak.VerifyNone(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = amqpbus.Dial(context.Background(), amqpbus.Options{URL: "amqp://user:hunter2@" + addr + "/", DialTimeout: time.Second, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Dial error = %v, want the URL without its password", err)
	}
}

func TestURLFromEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, ""},
		{map[string]string{"CLOUDAMQP_URL": "amqps://heroku"}, "amqps://heroku"},
		{map[string]string{"CLOUDAMQP_URL": "amqps://heroku", "SWITCHBOARD_AMQP_URL": "amqp://mine"}, "amqp://mine"},
	}
	for _, tt := range tests {
		if got := amqpbus.URLFromEnv(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("URLFromEnv(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

// TestConfirmsPipelined: 64 concurrent publishers with a window of 16 must
// have more than one message in flight (pipelined) and never more than 16.
func TestConfirmsPipelined(t *testing.T) {
	const window, publishers, each = 16, 64, 20
	b := newBus(t, func(o *amqpbus.Options) { o.ConfirmWindow = window })
	var got atomic.Int64
	s, err := b.Subscribe(context.Background(), bus.SubscribeOptions{Bindings: []string{"p.#"}}, func(context.Context, bus.Delivery) error {
		got.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := b.Publish(ctx, "p.x", []byte(fmt.Sprint(p, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	bustest.WaitFor(t, 5*time.Second, "all deliveries", func() bool { return got.Load() == publishers*each })
	if m := b.MaxPending(); m < 2 || m > window {
		t.Fatalf("max unconfirmed in flight = %d, want 2..%d", m, window)
	}
	if n := b.Outstanding(); n != 0 {
		t.Fatalf("%d publishes still outstanding", n)
	}
}

// TestLingerSequentialPublishesAtOnce: a publish made when nothing awaits a
// confirm is written at once, however long the Linger: one run each.
func TestLingerSequentialPublishesAtOnce(t *testing.T) {
	const n = 10
	b := newBus(t, func(o *amqpbus.Options) { o.Linger = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range n {
		if err := b.Publish(ctx, "p.seq", nil); err != nil && !errors.Is(err, bus.ErrUnroutable) {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if got := b.Runs(); got != n {
		t.Fatalf("runs = %d for %d sequential publishes, want %d", got, n, n)
	}
}

// TestLingerGroupsConcurrentPublishes: 64 publishers back to back keep
// confirms outstanding, so their publishes leave in runs, far fewer runs
// than messages, and every one is confirmed.
func TestLingerGroupsConcurrentPublishes(t *testing.T) {
	const publishers, each = 64, 20
	b := newBus(t, func(o *amqpbus.Options) { o.Linger = 20 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := b.Publish(ctx, "p.conc", nil); err != nil && !errors.Is(err, bus.ErrUnroutable) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Each round of 64 goes out in a run or two (the first publisher of a
	// round may find nothing in flight and go alone); one message per run
	// would be 1,280 runs.
	t.Logf("%d publishes in %d runs", publishers*each, b.Runs())
	if got, limit := b.Runs(), publishers*each/8; got > limit {
		t.Fatalf("runs = %d for %d concurrent publishes, want at most %d", got, publishers*each, limit)
	}
	if n := b.Outstanding(); n != 0 {
		t.Fatalf("%d publishes still outstanding", n)
	}
}

// TestCloseDoesNotWaitForLinger: publishes held back by a long Linger are
// failed by Close, which returns at once.
func TestCloseDoesNotWaitForLinger(t *testing.T) {
	const publishers = 50
	b := newBus(t, func(o *amqpbus.Options) { o.Linger = time.Hour })
	errs := make(chan error, publishers)
	for range publishers {
		go func() { errs <- b.Publish(context.Background(), "p.held", nil) }()
	}
	bustest.WaitFor(t, 5*time.Second, "a first run", func() bool { return b.Runs() >= 1 })
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the linger")
	}
	for range publishers {
		select {
		case err := <-errs:
			if err != nil && !errors.Is(err, bus.ErrUnroutable) && !errors.Is(err, bus.ErrClosed) {
				t.Fatalf("publish: %v, want success or ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a publisher is still waiting after Close")
		}
	}
}

// TestStreamAcksReturnCredit: stream deliveries are acked in runs; the runs
// must return the prefetch credit, or the consumer stalls after Prefetch
// entries.
func TestStreamAcksReturnCredit(t *testing.T) {
	const prefetch, total = 100, 5*100 + 37
	b := newBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got atomic.Int64
	s, err := b.Subscribe(ctx, bus.SubscribeOptions{Queue: "log", Stream: true, Offset: -1, Prefetch: prefetch, Bindings: []string{"ev.#"}}, func(context.Context, bus.Delivery) error {
		got.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range total {
		if err := b.Publish(ctx, "ev.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	bustest.WaitFor(t, 10*time.Second, "every entry", func() bool { return got.Load() == total })
}

// TestReconnectWhilePublishing drops the TCP connection several times while
// 4 publishers run: every Publish must succeed, every message must arrive at
// the durable queue's consumer at least once, and nothing stays unconfirmed.
func TestReconnectWhilePublishing(t *testing.T) {
	b := newBus(t)
	var mu sync.Mutex
	seen := map[string]bool{}
	s, err := b.Subscribe(context.Background(), bus.SubscribeOptions{Queue: "durable", Bindings: []string{"r.#"}}, func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		seen[string(d.Body)] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	const publishers, each = 4, 250
	var published atomic.Int64
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := b.Publish(ctx, "r.x", []byte(fmt.Sprintf("%d-%d", p, i))); err != nil {
					t.Errorf("publish %d-%d: %v", p, i, err)
					return
				}
				published.Add(1)
			}
		}()
	}
	for drop := 1; drop <= 3; drop++ {
		target := int64(drop * publishers * each / 4)
		bustest.WaitFor(t, 10*time.Second, "publishing progress", func() bool { return published.Load() >= target })
		b.DropConnection()
		bustest.WaitFor(t, 10*time.Second, "reconnect", func() bool { return b.Reconnects() == int64(drop) && b.Ready() == nil })
	}
	wg.Wait()
	bustest.WaitFor(t, 10*time.Second, "every message consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == publishers*each
	})
	if n := b.Outstanding(); n != 0 {
		t.Fatalf("%d publishes still unconfirmed", n)
	}
}

// TestBrokerClosesConnection closes this bus's connection from the broker
// side by its unique connection_name (never all connections: the broker is
// shared) and checks that publishing and consuming resume.
func TestBrokerClosesConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("rabbitmqctl is slow; -short skips it (TestReconnectWhilePublishing covers reconnection)")
	}
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		t.Skip("rabbitmqctl not available")
	}
	var name string
	b := newBus(t, func(o *amqpbus.Options) { name = o.ConnectionName })
	r := make(chan string, 10)
	s, err := b.Subscribe(context.Background(), bus.SubscribeOptions{Queue: "resume", Bindings: []string{"c.#"}}, func(_ context.Context, d bus.Delivery) error {
		r <- string(d.Body)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "list_connections", "pid", "client_properties").CombinedOutput()
	if err != nil {
		t.Skipf("rabbitmqctl list_connections: %v: %s", err, out)
	}
	var pid string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, `"`+name+`"`) {
			pid = strings.Fields(line)[0]
		}
	}
	if pid == "" {
		t.Fatalf("connection %s not listed:\n%s", name, out)
	}
	if out, err := exec.CommandContext(ctx, "rabbitmqctl", "close_connection", pid, "test: forced close").CombinedOutput(); err != nil {
		t.Fatalf("close_connection: %v: %s", err, out)
	}
	bustest.WaitFor(t, 10*time.Second, "reconnect", func() bool { return b.Reconnects() == 1 })
	if err := b.Publish(ctx, "c.x", []byte("after")); err != nil {
		t.Fatalf("Publish after a broker-side close: %v", err)
	}
	select {
	case got := <-r:
		if got != "after" {
			t.Fatalf("got %q", got)
		}
	case <-ctx.Done():
		t.Fatal("consumer did not resume")
	}
}

// fillStream declares the stream "log" bound to ev.# and publishes n
// messages to it on key ev.x, with bodies "0" to n-1 (offset i = body i).
func fillStream(t *testing.T, ctx context.Context, b *amqpbus.Bus, n int) {
	t.Helper()
	// Declare the stream and its binding first (from "next": nothing yet).
	s0, err := b.Subscribe(ctx, bus.SubscribeOptions{Queue: "log", Stream: true, Offset: -1, Bindings: []string{"ev.#"}}, func(context.Context, bus.Delivery) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	s0.Close()
	for i := range n {
		if err := b.Publish(ctx, "ev.x", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStream publishes 100 messages to a stream-bound binding and reads them
// back from offset 0 and from offset 50, checking exact offsets.
func TestStream(t *testing.T) {
	b := newBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	fillStream(t, ctx, b, 100)
	for _, from := range []int64{0, 50} {
		t.Run(fmt.Sprint("from ", from), func(t *testing.T) {
			var mu sync.Mutex
			var got []bus.Delivery
			s, err := b.Subscribe(ctx, bus.SubscribeOptions{Queue: "log", Stream: true, Offset: from, Bindings: []string{"ev.#"}}, func(_ context.Context, d bus.Delivery) error {
				mu.Lock()
				got = append(got, d)
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			want := 100 - int(from)
			bustest.WaitFor(t, 5*time.Second, "stream entries", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= want })
			mu.Lock()
			defer mu.Unlock()
			if len(got) != want {
				t.Fatalf("got %d entries, want %d", len(got), want)
			}
			// The stream holds only these messages, so offset n is message n.
			for i, d := range got {
				n := from + int64(i)
				if d.Offset != n || string(d.Body) != fmt.Sprint(n) || d.Key != "ev.x" {
					t.Fatalf("entry %d = offset %d body %q key %q, want offset %d body %d", i, d.Offset, d.Body, d.Key, n, n)
				}
			}
		})
	}
}

// TestStreamHead reads a stream's first entry: none while the stream is
// missing, a wait while it is empty, entry 0 once it has entries.
func TestStreamHead(t *testing.T) {
	b := newBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := b.Head(ctx, "log"); !errors.Is(err, bus.ErrNoQueue) {
		t.Fatalf("Head of a missing stream = %v, want ErrNoQueue", err)
	}
	fillStream(t, ctx, b, 0)
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if d, err := b.Head(short, "log"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Head of an empty stream = %+v, %v; want it to wait until ctx ends", d, err)
	}
	fillStream(t, ctx, b, 3)
	for range 2 { // the head stays put
		d, err := b.Head(ctx, "log")
		if err != nil {
			t.Fatal(err)
		}
		if d.Offset != 0 || d.Key != "ev.x" || string(d.Body) != "0" {
			t.Fatalf("Head = offset %d key %q body %q, want 0 ev.x \"0\"", d.Offset, d.Key, d.Body)
		}
	}
}

// TestStreamResumesAfterReconnect drops the connection in the middle of a
// stream replay: the subscription resumes at the next offset, so every
// offset is handled exactly once and in order.
func TestStreamResumesAfterReconnect(t *testing.T) {
	b := newBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	fillStream(t, ctx, b, 100)
	var mu sync.Mutex
	var offsets []int64
	dropped := false
	s, err := b.Subscribe(ctx, bus.SubscribeOptions{Queue: "log", Stream: true, Offset: 0, Bindings: []string{"ev.#"}}, func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		offsets = append(offsets, d.Offset)
		if d.Offset == 30 && !dropped {
			dropped = true
			b.DropConnection()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bustest.WaitFor(t, 10*time.Second, "all offsets", func() bool { mu.Lock(); defer mu.Unlock(); return len(offsets) >= 100 })
	mu.Lock()
	defer mu.Unlock()
	for i, off := range offsets {
		if off != int64(i) {
			t.Fatalf("handled offsets %v, want 0..99 once each", offsets)
		}
	}
	if b.Reconnects() != 1 {
		t.Fatalf("reconnects = %d, want 1", b.Reconnects())
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
