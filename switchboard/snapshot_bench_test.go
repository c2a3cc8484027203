package switchboard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// BenchmarkJoin: how long a new node takes to be ready on a log of
// SWITCHBOARD_JOIN_EVENTS (default 200,000) inbound SMS in 2,000
// conversations, replaying the whole log ("replay") and starting from the
// latest snapshot ("snapshot"; the log still holds its start, so both
// join the same log). The log is built once, by publishing the events
// straight to the stream, and applied by a first node that publishes the
// snapshots. Real broker only:
//
//	SWITCHBOARD_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ \
//	  go test -run XXX -bench BenchmarkJoin -benchtime 1x ./switchboard/
func BenchmarkJoin(b *testing.B) {
	events := 200000
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_JOIN_EVENTS")); err == nil && v > 0 {
		events = v
	}
	amqpURL, ex := clusterExchange(b)
	n1 := startNode(b, func(o *Options, c *Config) {
		clusterNode(amqpURL, ex, "n1")(o, c)
		o.SnapshotEvery = events / 10
	})
	waitReady(b, n1)
	start := time.Now()
	publishInbound(b, n1, events)
	b.Logf("published %d events in %v", events, time.Since(start).Round(time.Millisecond))
	var snapAt int64 = -1
	var snapBytes int
	var changed time.Time
	last := fmt.Sprintf("+1555880%04d", (events-1)%2000) // the last event's conversation
	// Snapshots come every SnapshotEvery entries, so the latest is past
	// 3/4 of the log once n1 has applied it all; it is taken once it has
	// stayed the same for 2 s (the last one is published after its
	// checkpoint).
	sbt.WaitFor(b, 10*time.Minute, "n1 to apply the log and publish a snapshot of most of it", func() bool {
		if len(n1.stored(last)) < (events+1999)/2000 {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ds, err := n1.node.bus.(bus.StreamLast).Last(ctx, snapshotQueue, 200*time.Millisecond)
		if err != nil {
			return false
		}
		for _, d := range ds {
			if meta, _, _, err := decodeSnapshot(d.Body); err == nil && meta.Offset > snapAt {
				snapAt, snapBytes, changed = meta.Offset, len(d.Body), time.Now()
			}
		}
		return time.Since(changed) > 2*time.Second && snapAt >= int64(events)*3/4
	})
	b.Logf("applied in %v; latest snapshot at offset %d, %d bytes", time.Since(start).Round(time.Millisecond), snapAt, snapBytes)
	for _, mode := range []string{"replay", "snapshot"} {
		b.Run(mode, func(b *testing.B) {
			for i := range b.N {
				name := fmt.Sprintf("%s%d", mode, i)
				stop := joinProfile(b, mode)
				t0, c0 := time.Now(), cpuTime()
				h := startNode(b, func(o *Options, c *Config) {
					clusterNode(amqpURL, ex, name)(o, c)
					o.SnapshotEvery = 0
					c.joinFromSnapshot = mode == "snapshot"
					if os.Getenv("SWITCHBOARD_JOIN_LOG") != "" {
						c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
					}
				})
				sbt.WaitFor(b, 10*time.Minute, name+" ready", func() bool { return h.node.Ready() == nil })
				d := time.Since(t0)
				stop()
				cpu := cpuTime() - c0
				b.ReportMetric(d.Seconds(), "s/join")
				b.ReportMetric(cpu.Seconds(), "cpu-s/join")
				b.Logf("%s: ready in %v, %v of CPU (%d events in the log)", mode, d.Round(time.Millisecond), cpu.Round(time.Millisecond), events)
				if got := len(h.stored(fmt.Sprintf("+1555880%04d", 7))); got != events/2000 {
					b.Fatalf("%s: %d messages in one conversation, want %d", mode, got, events/2000)
				}
			}
		})
	}
}

// joinProfile starts a CPU profile of one join when
// SWITCHBOARD_JOIN_CPUPROFILE names a file (mode is added to its name), so
// that the profile holds the join alone, not the building of the log.
func joinProfile(b *testing.B, mode string) (stop func()) {
	path := os.Getenv("SWITCHBOARD_JOIN_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path + "." + mode)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// cpuTime is the CPU time the process has used (user and system), the
// first node's included: on a shared machine, a steadier measure of the
// work done than the time elapsed.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// publishInbound appends n inbound SMS events to h's log, 2,000
// conversations round robin, from 64 publishers.
func publishInbound(b *testing.B, h *harness, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				phone := fmt.Sprintf("+1555880%04d", i%2000)
				ev := messageEvent{Message: protocol.Message{ID: fmt.Sprintf("bench-%08d", i), Phone: phone, Direction: protocol.In, Text: fmt.Sprintf("message %d about my order", i), Received: int64(1700000000000 + i), Status: protocol.StatusReceived}, Sid: fmt.Sprintf("SMbench%08d", i), To: testFrom, Node: "gen"}
				body, _ := json.Marshal(ev)
				if err := h.node.bus.Publish(context.Background(), keyIn(phone), body); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
}
