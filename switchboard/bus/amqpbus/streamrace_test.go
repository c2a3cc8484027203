package amqpbus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/bus/amqpbus"
	"github.com/switchboard/switchboard/switchboard/bus/bustest"
)

// TestStreamSubscribeWhileDeclared: nodes started together subscribe to a
// stream that one of them has only just declared. RabbitMQ answers a
// consumer that comes before the stream's local member is up with 406
// PRECONDITION_FAILED "does not have a replica on the local node"; that is
// transient, and Subscribe must not fail because of it (a node would exit at
// start).
func TestStreamSubscribeWhileDeclared(t *testing.T) {
	url := bustest.AMQPURL(t)
	name := bustest.UniqueName(t, "sbtest")
	dial := func() *amqpbus.Bus {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b, err := amqpbus.Dial(ctx, amqpbus.Options{
			URL: url, Exchange: name, QueuePrefix: name + ".", Logger: quiet,
			ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		bustest.DeleteOnCleanup(t, url, b.Declared)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	buses := []*amqpbus.Bus{dial(), dial(), dial()}
	for round := 0; round < 20; round++ {
		queue := fmt.Sprintf("log%d", round)
		var wg sync.WaitGroup
		errs := make(chan error, len(buses))
		for _, b := range buses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				sub, err := b.Subscribe(ctx, bus.SubscribeOptions{Queue: queue, Bindings: []string{"x." + queue}, Stream: true},
					func(context.Context, bus.Delivery) error { return nil })
				if err != nil {
					errs <- err
					return
				}
				t.Cleanup(func() { _ = sub.Close() })
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: Subscribe: %v", round, err)
		}
	}
}
