package amqpbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

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

// TestExchangeDeletedByHand: an operator deletes the exchange while the
// bus runs. Every publish then closes the publishing channel with 404
// NOT_FOUND; reopening the channel changes nothing, so publishes used to
// hang until their ctx ended, for as long as the process ran. The bus
// reconnects instead, which declares the exchange and every subscription's
// bindings again: the publish goes through and is delivered.
func TestExchangeDeletedByHand(t *testing.T) {
	b := newBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	got := make(chan string, 10)
	sub, err := b.Subscribe(ctx, bus.SubscribeOptions{Queue: "q", Bindings: []string{"a.#"}}, func(_ context.Context, d bus.Delivery) error {
		got <- string(d.Body)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	exchanges, _ := b.Declared()
	conn, err := amqp.Dial(bustest.AMQPURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDelete(exchanges[0], false, false); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	for {
		// Unroutable until the subscription has bound its queue again.
		err := b.Publish(pctx, "a.b", []byte("after"))
		if err == nil {
			break
		}
		if !errors.Is(err, bus.ErrUnroutable) {
			t.Fatalf("Publish after the exchange was deleted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case body := <-got:
		if body != "after" {
			t.Fatalf("got %q, want \"after\"", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription's binding was not declared again: nothing delivered")
	}
}
