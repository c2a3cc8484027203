package amqpbus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/bus/amqpbus"
	"github.com/switchboard/switchboard/switchboard/bus/bustest"
)

const (
	benchBody       = 256 // bytes, about one stored SMS as JSON
	benchPublishers = 64  // concurrent Publish callers: fills the window
	benchWindow     = 1024
	benchPrefetch   = 256
)

// BenchmarkAMQPPublishConsume: b.N messages through amqpbus (persistent,
// mandatory, confirmed) from concurrent publishers to one consumer that acks
// each; the time ends when the consumer has handled all of them. With the
// default Linger, and with every publish written at once (Linger < 0).
func BenchmarkAMQPPublishConsume(b *testing.B) {
	b.Run("linger=4ms", func(b *testing.B) { benchPublishConsume(b) })
	b.Run("linger=none", func(b *testing.B) {
		benchPublishConsume(b, func(o *amqpbus.Options) { o.Linger = -1 })
	})
}

func benchPublishConsume(b *testing.B, mod ...func(*amqpbus.Options)) {
	bb := newBus(b, mod...)
	var got atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	s, err := bb.Subscribe(context.Background(), bus.SubscribeOptions{Bindings: []string{"sms.in.#"}, Prefetch: benchPrefetch}, func(context.Context, bus.Delivery) error {
		if got.Add(1) == n {
			close(done)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := make([]byte, benchBody)
	ctx := context.Background()
	b.SetBytes(benchBody)
	b.ResetTimer()
	b.SetParallelism((benchPublishers + 1) / 2) // × GOMAXPROCS goroutines
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bb.Publish(ctx, "sms.in.15551234567", body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	<-done
}

// BenchmarkRawAMQPPublishConfirmConsume is the baseline: plain amqp091-go,
// one publisher with asynchronous confirms and the same window, persistent
// messages, one consumer with the same prefetch acking each message.
func BenchmarkRawAMQPPublishConfirmConsume(b *testing.B) {
	url := bustest.AMQPURL(b)
	exchange := bustest.UniqueName(b, "sbbench")
	queue := exchange + ".q"
	bustest.DeleteOnCleanup(b, url, func() ([]string, []string) { return []string{exchange}, []string{queue} })
	conn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	pch, _ := conn.Channel()
	cch, _ := conn.Channel()
	if err := pch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := pch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	if err := pch.QueueBind(queue, "sms.in.#", exchange, false, nil); err != nil {
		b.Fatal(err)
	}
	if err := pch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	confirms := pch.NotifyPublish(make(chan amqp.Confirmation, benchWindow))
	if err := cch.Qos(benchPrefetch, 0, false); err != nil {
		b.Fatal(err)
	}
	deliveries, err := cch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for i := 0; i < b.N; i++ {
			d := <-deliveries
			_ = d.Ack(false)
		}
	}()
	window := make(chan struct{}, benchWindow)
	confirmed := make(chan struct{})
	go func() {
		defer close(confirmed)
		for i := 0; i < b.N; i++ {
			select {
			case c := <-confirms:
				if !c.Ack {
					b.Error("nack")
				}
				<-window
			case <-time.After(30 * time.Second):
				b.Error("confirm timeout")
				return
			}
		}
	}()
	body := make([]byte, benchBody)
	b.SetBytes(benchBody)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		window <- struct{}{}
		if err := pch.Publish(exchange, "sms.in.15551234567", true, false, amqp.Publishing{DeliveryMode: amqp.Persistent, ContentType: "application/json", Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	<-confirmed
	<-consumed
}
