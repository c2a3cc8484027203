//go:build ignore

// Command streamcost measures what a RabbitMQ stream costs the broker per
// message at a fixed rate, depending on how many messages each write
// carries: it publishes persistent messages with confirms into a fresh
// stream at -rate, -run messages back to back every -run/-rate seconds,
// while -consumers stream consumers (prefetch 256, one multiple ack per
// -ack-every deliveries) read them, and reads the broker's CPU time
// (beam.smp, from /proc) before and after. This is the measurement behind
// amqpbus's Linger (BENCHMARKS.md, "What a stream costs per message"):
//
//	for r in 1 2 4 8 16; do go run bench/streamcost.go -rate 2000 -run $r; done
//
// With -unrouted it publishes the same way to a topic exchange that no
// queue is bound to, which measures what the broker spends per message
// before any stream (BENCHMARKS.md, "What the broker costs per chunk"):
//
//	go run bench/streamcost.go -rate 3000 -run 4 -unrouted -consumers 0
//
// It needs the broker on this machine (to read its CPU time) and deletes
// its stream when done.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/switchboard/switchboard/switchboard/loadgen"
)

func main() {
	url := flag.String("amqp", "amqp://guest:guest@127.0.0.1:5672/", "broker URL (loopback)")
	rate := flag.Int("rate", 1000, "messages per second")
	run := flag.Int("run", 1, "messages written back to back per write")
	consumers := flag.Int("consumers", 2, "stream consumers (cluster nodes)")
	ackEvery := flag.Int("ack-every", 64, "deliveries per multiple ack")
	d := flag.Duration("d", 5*time.Second, "how long to publish")
	size := flag.Int("size", 300, "message body bytes (an sms.in event is about 300)")
	unrouted := flag.Bool("unrouted", false, "publish to a topic exchange no queue is bound to (what a publish costs without a stream; -consumers 0)")
	flag.Parse()
	beam, err := beamPID()
	if err != nil {
		fail(err)
	}
	conn, err := amqp.Dial(*url)
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		fail(err)
	}
	q := fmt.Sprintf("streamcost.%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "stream"}); err != nil {
		fail(err)
	}
	defer ch.QueueDelete(q, false, false, false)

	var got atomic.Int64
	for range *consumers {
		cc, err := conn.Channel()
		if err != nil {
			fail(err)
		}
		if err := cc.Qos(256, 0, false); err != nil {
			fail(err)
		}
		deliveries, err := cc.Consume(q, "", false, false, false, false, amqp.Table{"x-stream-offset": "next"})
		if err != nil {
			fail(err)
		}
		go func() {
			n := 0
			for m := range deliveries {
				got.Add(1)
				if n++; n%*ackEvery == 0 {
					m.Ack(true)
				}
			}
		}()
	}
	pch, err := conn.Channel()
	if err != nil {
		fail(err)
	}
	if *unrouted {
		if err := pch.ExchangeDeclare(q+".x", "topic", false, false, false, false, nil); err != nil {
			fail(err)
		}
		defer pch.ExchangeDelete(q+".x", false, false)
	}
	if err := pch.Confirm(false); err != nil {
		fail(err)
	}
	var confirmed atomic.Int64
	confirms := pch.NotifyPublish(make(chan amqp.Confirmation, 1<<16))
	go func() {
		for range confirms {
			confirmed.Add(1)
		}
	}()
	body := bytes.Repeat([]byte("x"), *size)
	time.Sleep(500 * time.Millisecond) // consumers attached

	cpu0, start := cpuSeconds(beam), time.Now()
	every := time.Duration(float64(time.Second) * float64(*run) / float64(*rate))
	sent := 0
	for time.Since(start) < *d {
		time.Sleep(time.Until(start.Add(time.Duration(sent / *run) * every)))
		for range *run {
			ex, key := "", q
			if *unrouted {
				ex, key = q+".x", "sms.in.1555"
			}
			err := pch.Publish(ex, key, false, false, amqp.Publishing{
				DeliveryMode: amqp.Persistent, ContentType: "application/json",
				MessageId: strconv.Itoa(sent), Timestamp: time.Now(), Body: body,
			})
			if err != nil {
				fail(err)
			}
			sent++
		}
	}
	elapsed := time.Since(start).Seconds()
	cpu := cpuSeconds(beam) - cpu0
	deadline := time.Now().Add(10 * time.Second)
	for (!*unrouted && got.Load() < int64(sent**consumers) || confirmed.Load() < int64(sent)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Printf("rate %d/s, %d per write, %d consumers, ack every %d: sent %.0f/s, delivered %d/%d, confirmed %d; broker CPU %.0f%% of a core = %.0f µs per message\n",
		*rate, *run, *consumers, *ackEvery, float64(sent)/elapsed, got.Load(), sent**consumers, confirmed.Load(), 100*cpu/elapsed, 1e6*cpu/float64(sent))
}

// beamPID finds the local RabbitMQ (Erlang beam.smp) process.
func beamPID() (int, error) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		cmd, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err == nil && strings.Contains(string(cmd), "beam.smp") && strings.Contains(string(cmd), "rabbit") {
			return strconv.Atoi(filepath.Base(dir))
		}
	}
	return 0, fmt.Errorf("no local RabbitMQ (beam.smp) process found")
}

// cpuSeconds is the CPU time pid has used.
func cpuSeconds(pid int) float64 {
	d, err := loadgen.CPUTime(pid)
	if err != nil {
		fail(err)
	}
	return d.Seconds()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "streamcost:", err)
	os.Exit(1)
}
