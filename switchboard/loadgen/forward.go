package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Forwarder is the cheapest possible cluster node, for a baseline: an HTTP
// handler that reads the webhook form, publishes it with confirms along a
// cluster log's broker path (a topic exchange bound to a stream with the
// log's bindings, mandatory, key sms.in.<digits of From>) and answers the
// same empty TwiML as a node once RabbitMQ confirmed it, while Consumers
// consumers (one per node) read every message. It keeps no journal, stores
// nothing, routes nothing and has no agents: driven by a Runner (Agents 0,
// TwilioAddr ""), it measures what an HTTP webhook plus the cluster's
// broker path cost on this machine before any node work.
type Forwarder struct {
	URL string // http://127.0.0.1:port

	srv      *http.Server
	served   chan struct{}
	path     *clusterPath
	pconn    *amqp.Connection
	pch      *amqp.Channel
	returned atomic.Int64
}

// StartForwarder declares a fresh exchange and stream named after queue
// (default sbload.forward.<nanoseconds>) on the broker at amqpURL and
// starts the forwarder on 127.0.0.1. Close removes both.
func StartForwarder(amqpURL, queue string, consumers int) (*Forwarder, error) {
	if amqpURL == "" {
		return nil, errors.New("-amqp: a broker URL is required for the forwarding baseline")
	}
	if queue == "" {
		queue = fmt.Sprintf("sbload.forward.%d", time.Now().UnixNano())
	}
	f := &Forwarder{served: make(chan struct{})}
	var err error
	if f.pconn, err = amqp.Dial(amqpURL); err != nil {
		return nil, fmt.Errorf("forwarder: dial: %w", err)
	}
	fail := func(err error) (*Forwarder, error) {
		if f.path != nil {
			f.path.close()
		}
		f.pconn.Close()
		return nil, fmt.Errorf("forwarder: %w", err)
	}
	if f.path, err = newClusterPath(f.pconn, amqpURL, queue, consumers, 256, nil); err != nil {
		return fail(err)
	}
	if f.pch, err = f.pconn.Channel(); err != nil {
		return fail(err)
	}
	if err := f.pch.Confirm(false); err != nil {
		return fail(err)
	}
	returns := f.pch.NotifyReturn(make(chan amqp.Return, 16))
	go func() {
		for range returns {
			f.returned.Add(1)
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	f.URL = "http://" + ln.Addr().String()
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(f.served)
		f.srv.Serve(ln)
	}()
	return f, nil
}

func (f *Forwarder) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	digits := strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return c
		}
		return -1
	}, r.PostForm.Get("From"))
	dc, err := f.pch.PublishWithDeferredConfirmWithContext(r.Context(), f.path.exchange, "sms.in."+digits, true, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, ContentType: "application/x-www-form-urlencoded", Body: []byte(r.PostForm.Encode())})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if ok, err := dc.WaitContext(r.Context()); !ok || err != nil {
		http.Error(w, "not confirmed", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`)
}

// Consumed returns the messages every consumer has read so far (the
// slowest consumer's count) and how many publishes RabbitMQ returned as
// unroutable.
func (f *Forwarder) Consumed() (consumed, returned int64) {
	return f.path.slowest(), f.returned.Load()
}

// WaitConsumed waits until every consumer has read n messages or ctx
// ends, and returns the slowest consumer's count.
func (f *Forwarder) WaitConsumed(ctx context.Context, n int64) int64 {
	for f.path.slowest() < n && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
	return f.path.slowest()
}

// Close stops the server and the consumers and deletes the exchange and
// the stream.
func (f *Forwarder) Close() error {
	err := f.srv.Close()
	<-f.served
	f.path.close()
	f.pch.Close()
	f.pconn.Close()
	return err
}

// clusterPath is a cluster log's broker path: a durable topic exchange
// (queue+".x") bound to a stream (queue) with the log's bindings, read
// whole by consumers.
type clusterPath struct {
	*consumers
	queue, exchange string
	admin           *amqp.Connection // declares and deletes
	once            sync.Once
}

// clusterLogBindings are the bindings of cluster mode's log stream
// (switchboard/cluster.go).
var clusterLogBindings = []string{"sms.in.#", "sms.out.#", "sms.status.#", "agent.presence.#", "route.#", "note.#", "contact.#", "canned.#"}

// newClusterPath declares the exchange and the stream on admin and starts
// n consumers on their own connections to url, each acking 64 deliveries
// at a time like a node.
func newClusterPath(admin *amqp.Connection, url, queue string, n, prefetch int, onDelivery func(amqp.Delivery)) (*clusterPath, error) {
	p := &clusterPath{queue: queue, exchange: queue + ".x", admin: admin}
	ch, err := admin.Channel()
	if err != nil {
		return nil, err
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(p.exchange, "topic", true, false, false, false, nil); err != nil {
		return nil, fmt.Errorf("declare exchange: %w", err)
	}
	fail := func(err error) (*clusterPath, error) {
		p.close()
		return nil, err
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "stream"}); err != nil {
		return fail(fmt.Errorf("declare stream: %w", err))
	}
	for _, key := range clusterLogBindings {
		if err := ch.QueueBind(queue, key, p.exchange, false, nil); err != nil {
			return fail(fmt.Errorf("bind: %w", err))
		}
	}
	if p.consumers, err = startConsumers(url, queue, n, prefetch, 64, amqp.Table{"x-stream-offset": "next"}, onDelivery); err != nil {
		return fail(err)
	}
	return p, nil
}

// close stops the consumers and deletes the stream and the exchange.
func (p *clusterPath) close() {
	p.once.Do(func() {
		if p.consumers != nil {
			p.consumers.close()
		}
		if ch, err := p.admin.Channel(); err == nil {
			ch.QueueDelete(p.queue, false, false, false)
			ch.ExchangeDelete(p.exchange, false, false)
			ch.Close()
		}
	})
}

// consumers read one queue, each on its own connection, with manual acks
// (one multiple ack per ackEvery deliveries), and count what they read.
type consumers struct {
	conns  []*amqp.Connection
	counts []atomic.Int64
	wg     sync.WaitGroup
	stop   chan struct{}
}

// startConsumers starts n consumers of queue; each delivery is passed to
// onDelivery (if not nil) before it is counted.
func startConsumers(url, queue string, n, prefetch, ackEvery int, args amqp.Table, onDelivery func(amqp.Delivery)) (*consumers, error) {
	c := &consumers{counts: make([]atomic.Int64, n), stop: make(chan struct{})}
	for i := range n {
		conn, err := amqp.Dial(url)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("dial: %w", err)
		}
		c.conns = append(c.conns, conn)
		ch, err := conn.Channel()
		if err == nil {
			err = ch.Qos(prefetch, 0, false)
		}
		var deliveries <-chan amqp.Delivery
		if err == nil {
			deliveries, err = ch.Consume(queue, "", false, false, false, false, args)
		}
		if err != nil {
			c.close()
			return nil, fmt.Errorf("consume: %w", err)
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			read := 0
			for {
				select {
				case d, ok := <-deliveries:
					if !ok {
						return
					}
					if onDelivery != nil {
						onDelivery(d)
					}
					if read++; read%ackEvery == 0 {
						d.Ack(ackEvery > 1)
					}
					c.counts[i].Add(1)
				case <-c.stop:
					return
				}
			}
		}()
	}
	return c, nil
}

// slowest returns the count of the consumer that has read the fewest.
func (c *consumers) slowest() int64 {
	var low int64 = -1
	for i := range c.counts {
		if n := c.counts[i].Load(); low < 0 || n < low {
			low = n
		}
	}
	return max(low, 0)
}

// total returns what all consumers have read together.
func (c *consumers) total() int64 {
	var sum int64
	for i := range c.counts {
		sum += c.counts[i].Load()
	}
	return sum
}

// close stops the consumers and closes their connections.
func (c *consumers) close() {
	close(c.stop)
	c.wg.Wait()
	for _, conn := range c.conns {
		conn.Close()
	}
}
