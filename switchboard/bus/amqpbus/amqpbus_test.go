package amqpbus_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

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
