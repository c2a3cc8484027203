package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/bus/bustest"
	"go.uber.org/goleak"
)

func TestMemoryConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bus.Bus {
		return bus.NewMemory(bus.MemoryOptions{})
	})
}

// TestMemoryPublishBlocksWhenFull checks the bounded queue: with the only
// subscriber stuck, Publish blocks once the queue is full and honors ctx.
func TestMemoryPublishBlocksWhenFull(t *testing.T) {
	defer goleak.VerifyNone(t)
	m := bus.NewMemory(bus.MemoryOptions{QueueSize: 2})
	defer m.Close()
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s, err := m.Subscribe(context.Background(), bus.SubscribeOptions{Bindings: []string{"#"}}, func(ctx context.Context, d bus.Delivery) error {
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// One message is taken by the stuck handler, two fill the queue.
	if err := m.Publish(ctx, "k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	<-started
	for _, b := range []string{"2", "3"} {
		if err := m.Publish(ctx, "k", []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := m.Publish(tctx, "k", []byte("4")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish into a full queue = %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := m.Publish(ctx, "k", []byte("5")); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryRejectsStreamsAndBadOptions(t *testing.T) {
	m := bus.NewMemory(bus.MemoryOptions{})
	defer m.Close()
	h := func(context.Context, bus.Delivery) error { return nil }
	tests := []struct {
		name string
		opts bus.SubscribeOptions
	}{
		{"no bindings", bus.SubscribeOptions{}},
		{"small prefetch", bus.SubscribeOptions{Bindings: []string{"#"}, Prefetch: 10}},
		{"negative attempts", bus.SubscribeOptions{Bindings: []string{"#"}, MaxAttempts: -1}},
		{"stream", bus.SubscribeOptions{Queue: "log", Bindings: []string{"#"}, Stream: true}},
		{"stream without queue", bus.SubscribeOptions{Bindings: []string{"#"}, Stream: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Subscribe(context.Background(), tt.opts, h); err == nil {
				t.Fatal("Subscribe accepted invalid options")
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad")
	p := bus.Permanent(base)
	if !bus.IsPermanent(p) || !errors.Is(p, base) {
		t.Fatal("Permanent does not wrap")
	}
	if bus.IsPermanent(base) || bus.Permanent(nil) != nil {
		t.Fatal("IsPermanent / Permanent(nil) wrong")
	}
	if !bus.IsPermanent(errors.Join(errors.New("x"), p)) {
		t.Fatal("IsPermanent does not see through wrapping")
	}
}

func BenchmarkMemoryPublishConsume(b *testing.B) {
	m := bus.NewMemory(bus.MemoryOptions{})
	defer m.Close()
	done := make(chan struct{})
	var n int
	s, err := m.Subscribe(context.Background(), bus.SubscribeOptions{Bindings: []string{"sms.in.#"}}, func(ctx context.Context, d bus.Delivery) error {
		n++
		if n == b.N {
			close(done)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := make([]byte, 256)
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := m.Publish(ctx, "sms.in.15551234567", body); err != nil {
			b.Fatal(err)
		}
	}
	<-done
}
