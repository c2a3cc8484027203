package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Baseline is a raw figure measured on the same machine in the same run,
// for the ratios in BENCHMARKS.md.
type Baseline struct {
	Name     string  `json:"name"`
	Ops      int64   `json:"ops"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"per_s"`
	Latency  Summary `json:"latency_ms"`
	Settings string  `json:"settings"`
}

// WriteText writes the baseline as one line.
func (b *Baseline) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "baseline %s (%s): %d ops in %.2fs = %.0f/s; latency ms p50 %.3f p99 %.3f p99.9 %.3f max %.3f\n",
		b.Name, b.Settings, b.Ops, b.Seconds, b.PerSec, b.Latency.P50, b.Latency.P99, b.Latency.P999, b.Latency.Max)
	return err
}

// TrivialServer starts the raw loopback HTTP baseline: a Go handler that
// reads the webhook form and answers the same empty TwiML as a node, and
// does nothing else. Drive it with a Runner (Agents 0, TwilioAddr "") to
// measure the ceiling of the generator, net/http and loopback on this
// machine. stop closes it.
func TrivialServer() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("loadgen: trivial server: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			w.Header().Set("Content-Type", "text/xml")
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), func() { srv.Close(); <-done }, nil
}

// AMQPBaselineOptions configure BaselineAMQP.
type AMQPBaselineOptions struct {
	URL      string        // broker; required
	Duration time.Duration // how long to publish; default 5s
	Window   int           // unconfirmed publishes in flight; default 1024 (amqpbus's window)
	Prefetch int           // consumer prefetch; default 256
	Size     int           // body bytes; default 256 (one stored SMS as JSON)
	// Stream uses a RabbitMQ stream (x-queue-type stream, consumed from
	// "next") instead of a classic queue: the kind of queue cluster mode's
	// log is, so its ceiling on the same broker.
	Stream bool
	// Cluster sends every message the way a cluster node's log event
	// goes, without the node: through a fresh durable topic exchange bound
	// to a stream with the log's bindings, published mandatory with
	// routing keys sms.in.<digits> over 1,000 numbers, and read whole by
	// Consumers consumers (one per node, each on its own connection,
	// acking 64 deliveries at a time like a node). It implies Stream. The
	// rate counts a message once every consumer has it.
	Cluster   bool
	Consumers int // with Cluster; default 2
	// Queue names the queue (and, with Cluster, the exchange Queue+".x");
	// default sbload.baseline.<nanoseconds>. Both are deleted afterwards.
	Queue string
}

// BaselineAMQP measures raw amqp091-go: one publisher with asynchronous
// confirms and a bounded window, persistent messages into a durable queue,
// one consumer acking each message (or, with Cluster, the broker path of a
// cluster's log). The rate is messages consumed (by every consumer) per
// second; latency is publish → consume, one sample per delivery. The queue
// (and exchange) are deleted afterwards.
func BaselineAMQP(ctx context.Context, o AMQPBaselineOptions) (*Baseline, error) {
	if o.URL == "" {
		return nil, errors.New("-amqp: a broker URL is required for the AMQP baseline")
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 1024
	}
	if o.Prefetch <= 0 {
		o.Prefetch = 256
	}
	if o.Size < 16 {
		o.Size = 256
	}
	if o.Cluster && o.Consumers <= 0 {
		o.Consumers = 2
	}
	pconn, err := amqp.Dial(o.URL)
	if err != nil {
		return nil, fmt.Errorf("amqp baseline: dial: %w", err)
	}
	defer pconn.Close()
	queue := o.Queue
	if queue == "" {
		queue = fmt.Sprintf("sbload.baseline.%d", time.Now().UnixNano())
	}

	var lat Recorder
	var lastNano atomic.Int64
	record := func(d amqp.Delivery) {
		now := time.Now()
		if len(d.Body) >= 8 {
			lat.Record(now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(d.Body)))))
		}
		lastNano.Store(now.UnixNano())
	}
	var readers *consumers
	exchange, kind := "", "durable queue"
	if o.Cluster {
		path, err := newClusterPath(pconn, o.URL, queue, o.Consumers, o.Prefetch, record)
		if err != nil {
			return nil, fmt.Errorf("amqp baseline: %w", err)
		}
		defer path.close()
		readers, exchange = path.consumers, path.exchange
		kind = fmt.Sprintf("topic exchange with %d bindings, mandatory → stream → %d consumers", len(clusterLogBindings), o.Consumers)
	} else {
		ch, err := pconn.Channel()
		if err != nil {
			return nil, fmt.Errorf("amqp baseline: channel: %w", err)
		}
		var declareArgs, consumeArgs amqp.Table
		if o.Stream {
			declareArgs = amqp.Table{"x-queue-type": "stream"}
			consumeArgs = amqp.Table{"x-stream-offset": "next"}
			kind = "stream"
		}
		_, err = ch.QueueDeclare(queue, true, false, false, false, declareArgs)
		ch.Close()
		if err != nil {
			return nil, fmt.Errorf("amqp baseline: declare %s: %w", queue, err)
		}
		defer func() {
			if ch, err := pconn.Channel(); err == nil {
				ch.QueueDelete(queue, false, false, false)
				ch.Close()
			}
		}()
		if readers, err = startConsumers(o.URL, queue, 1, o.Prefetch, 1, consumeArgs, record); err != nil {
			return nil, fmt.Errorf("amqp baseline: %w", err)
		}
		defer readers.close()
	}

	pch, err := pconn.Channel()
	if err != nil {
		return nil, fmt.Errorf("amqp baseline: channel: %w", err)
	}
	if err := pch.Confirm(false); err != nil {
		return nil, fmt.Errorf("amqp baseline: confirm mode: %w", err)
	}
	confirms := pch.NotifyPublish(make(chan amqp.Confirmation, o.Window))
	returns := pch.NotifyReturn(make(chan amqp.Return, 16))
	var published, nacked, returned atomic.Int64
	pubDone := make(chan struct{})
	window := make(chan struct{}, o.Window)
	var confirmWG sync.WaitGroup
	confirmWG.Add(2)
	go func() { // the confirm reader: frees window slots
		defer confirmWG.Done()
		for c := range confirms {
			if !c.Ack {
				nacked.Add(1)
			}
			<-window
		}
	}()
	go func() {
		defer confirmWG.Done()
		for range returns {
			returned.Add(1)
		}
	}()
	start := time.Now()
	go func() {
		defer close(pubDone)
		body := make([]byte, o.Size)
		end := start.Add(o.Duration)
		key := queue
		for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
			window <- struct{}{}
			binary.BigEndian.PutUint64(body, uint64(time.Now().UnixNano()))
			if exchange != "" {
				key = fmt.Sprintf("sms.in.1555%07d", i%1000)
			}
			err := pch.PublishWithContext(ctx, exchange, key, exchange != "", false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
			if err != nil {
				<-window
				return
			}
			published.Add(1)
		}
	}()
	// Wait until the publisher is done and every consumer has every
	// message (or the broker fell 30 s behind).
	<-pubDone
	deadline := time.Now().Add(30 * time.Second)
	for readers.slowest() < published.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	// Wait for the publisher to finish before closing its channel.
	pch.Close()
	confirmWG.Wait()
	var elapsed time.Duration
	if last := lastNano.Load(); last != 0 {
		elapsed = time.Unix(0, last).Sub(start)
	}
	perMessage := readers.slowest()
	name := "amqp091-go publish-with-confirms → consume"
	switch {
	case o.Cluster:
		name = "amqp091-go publish-with-confirms → cluster-shaped log"
	case o.Stream:
		name = "amqp091-go publish-with-confirms → stream consume"
	}
	b := &Baseline{
		Name: name, Ops: perMessage, Seconds: round3(elapsed.Seconds()),
		PerSec: perSec(perMessage, elapsed), Latency: lat.Summary(),
		Settings: fmt.Sprintf("persistent %d-byte messages, %s, confirm window %d, prefetch %d, manual ack; %d nacked, %d returned", o.Size, kind, o.Window, o.Prefetch, nacked.Load(), returned.Load()),
	}
	return b, nil
}

// BaselineLevelDB measures raw goleveldb appends with Sync: true (one fsync
// per write, or per merged group of concurrent writes) from writers
// goroutines for d, in a fresh directory under dir that is removed
// afterwards.
func BaselineLevelDB(ctx context.Context, dir string, writers int, d time.Duration) (*Baseline, error) {
	if writers < 1 {
		writers = 1
	}
	tmp, err := os.MkdirTemp(dir, "sbload-leveldb-")
	if err != nil {
		return nil, fmt.Errorf("leveldb baseline: %w", err)
	}
	defer os.RemoveAll(tmp)
	db, err := leveldb.OpenFile(tmp, nil)
	if err != nil {
		return nil, fmt.Errorf("leveldb baseline: open: %w", err)
	}
	defer db.Close()
	var lat Recorder
	var ops atomic.Int64
	var seq atomic.Uint64
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	end := start.Add(d)
	value := make([]byte, 256)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := make([]byte, 8)
			wo := &opt.WriteOptions{Sync: true}
			for time.Now().Before(end) && ctx.Err() == nil {
				binary.BigEndian.PutUint64(key, seq.Add(1))
				t := time.Now()
				if err := db.Put(key, value, wo); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				lat.Record(time.Since(t))
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("leveldb baseline: put: %w", firstErr)
	}
	elapsed := time.Since(start)
	return &Baseline{
		Name: "goleveldb synced append", Ops: ops.Load(), Seconds: round3(elapsed.Seconds()),
		PerSec: perSec(ops.Load(), elapsed), Latency: lat.Summary(),
		Settings: fmt.Sprintf("%d writer(s), 8-byte keys, 256-byte values, Sync: true, dir %s", writers, dir),
	}, nil
}
