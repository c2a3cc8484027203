package nav

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
)

// unbound is a Publisher with no queue bound for its first n publishes, as
// a RabbitMQ exchange is while a deleted nav stream is declared again.
type unbound struct {
	recorder
	mu sync.Mutex
	n  int
}

func (u *unbound) Publish(ctx context.Context, key string, body []byte) error {
	u.mu.Lock()
	if u.n != 0 {
		u.n--
		u.mu.Unlock()
		return bus.ErrUnroutable
	}
	u.mu.Unlock()
	return u.recorder.Publish(ctx, key, body)
}

// An event published while no queue is bound is retried until one is: the
// shop was told it is accepted, so it must reach the stream. If none is
// bound in time, the POST fails (and the shop retries) instead.
func TestIngestWaitsForAQueue(t *testing.T) {
	pub := &unbound{n: 3}
	s, _ := newService(t, testOptions(newClock()), pub)
	s.unroutableWait = 5 * time.Second
	if err := s.Ingest(context.Background(), []Event{view("u1", "7")}); err != nil {
		t.Fatalf("Ingest = %v", err)
	}
	if got := pub.take(); len(got) != 1 || got[0].key != "nav.view.7" {
		t.Fatalf("published %v, want the event once on nav.view.7", got)
	}

	pub.n = -1 // never bound
	s.unroutableWait = 50 * time.Millisecond
	if err := s.Ingest(context.Background(), []Event{view("u1", "8")}); !errors.Is(err, bus.ErrUnroutable) {
		t.Fatalf("Ingest with no queue bound = %v, want %v", err, bus.ErrUnroutable)
	}
}
