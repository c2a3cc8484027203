package udpstats

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

func newTestEmitter(t *testing.T, opts Options) *Emitter {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	e := NewEmitter(opts)
	t.Cleanup(func() { e.Close() })
	return e
}

func TestPackAtTheBoundary(t *testing.T) {
	// "p.seq:1|g|#node:n1,part:1/1" is 27 bytes; each unit costs 1 + len.
	const seqLen = 27
	e := newTestEmitter(t, Options{Node: "n1", Prefix: "p.", Group: "239.255.77.77:9"})
	unit := func(n int) []byte { return bytes.Repeat([]byte{'a'}, n) }
	tests := []struct {
		name  string
		units []int
		sizes []int // datagram sizes
	}{
		{"fills exactly 1432", []int{700, MaxDatagram - seqLen - 1 - 701}, []int{MaxDatagram}},
		{"one byte more starts a second datagram", []int{700, MaxDatagram - seqLen - 1 - 700},
			[]int{seqLen + 1 + 700, seqLen + 1 + MaxDatagram - seqLen - 1 - 700}},
		{"a single unit that fills it", []int{MaxDatagram - seqLen - 1}, []int{MaxDatagram}},
		{"a unit too long is dropped, not split", []int{10, MaxDatagram - seqLen, 10}, []int{seqLen + 22}},
		{"nothing to send still sends the sequence", nil, []int{seqLen}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.seq = 0
			var units [][]byte
			for _, n := range tt.units {
				units = append(units, unit(n))
			}
			var sizes []int
			for _, d := range e.pack(units) {
				sizes = append(sizes, len(d))
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tt.sizes) {
				t.Fatalf("datagram sizes %v, want %v", sizes, tt.sizes)
			}
		})
	}
}

func TestPackManyDatagrams(t *testing.T) {
	e := newTestEmitter(t, Options{Node: "node-with-a-long-name", Group: "239.255.77.77:9"})
	e.seq = 98 // crosses 99 -> 100 -> ...: the sequence line grows by a digit
	var units [][]byte
	for i := range 3000 { // > 10 datagrams: part:i/k needs two digits
		units = append(units, []byte(fmt.Sprintf("switchboard.m%d.%s:%d|c|#node:x", i, strings.Repeat("z", i%50), i)))
	}
	want := make([][]byte, len(units))
	copy(want, units)
	dgrams := e.pack(units)
	if len(dgrams) < 10 {
		t.Fatalf("only %d datagrams", len(dgrams))
	}
	var back []string
	for i, d := range dgrams {
		if len(d) > MaxDatagram {
			t.Fatalf("datagram %d is %d bytes", i, len(d))
		}
		lines := strings.Split(string(d), "\n")
		wantSeq := fmt.Sprintf("switchboard.seq:%d|g|#node:node-with-a-long-name,part:%d/%d", 99+i, i+1, len(dgrams))
		if lines[0] != wantSeq {
			t.Fatalf("datagram %d starts %q, want %q", i, lines[0], wantSeq)
		}
		back = append(back, lines[1:]...)
		// Full: the next unit would not have fit.
		if i+1 < len(dgrams) {
			next := strings.Split(string(dgrams[i+1]), "\n")[1]
			if len(d)+1+len(next) <= MaxDatagram {
				t.Fatalf("datagram %d (%d bytes) had room for %q", i, len(d), next)
			}
		}
	}
	if len(back) != len(want) {
		t.Fatalf("%d lines back, want %d", len(back), len(want))
	}
	for i := range want {
		if back[i] != string(want[i]) {
			t.Fatalf("line %d: %q, want %q", i, back[i], want[i])
		}
	}
	if e.seq != uint64(98+len(dgrams)) {
		t.Fatalf("seq %d after %d datagrams", e.seq, len(dgrams))
	}
}

func TestCollectLines(t *testing.T) {
	clock := newClock()
	e := newTestEmitter(t, Options{Node: "n 1", Now: clock.Now, Group: "239.255.77.77:9"})
	c := e.Counter("sms.in")
	if e.Counter("sms.in") != c {
		t.Fatal("same name gave another counter")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Inc()
			}
		}()
	}
	wg.Wait()
	c.Add(-1)
	e.Gauge("agents").Set(4)
	e.Gauge("agents").Set(3)
	e.Gauge("drift").Set(-2)
	e.GaugeFunc("queue.depth", func() int64 { return 7 })
	e.GaugeFunc("boom", func() int64 { panic("bug in gauge") })
	tm := e.Timing("route.latency")
	for range 98 {
		tm.Observe(time.Millisecond)
	}
	tm.Observe(5 * time.Millisecond)
	tm.Observe(10*time.Millisecond + 300*time.Microsecond)
	e.Timing("idle")
	e.Counter("agents") // clash with the gauge: logged, not sent twice
	clock.Advance(1500 * time.Millisecond)

	lines := func() string {
		var b strings.Builder
		for _, u := range e.collect(clock.Now().Sub(e.lastFlush)) {
			b.Write(u)
			b.WriteByte('\n')
		}
		e.lastFlush = clock.Now()
		return b.String()
	}
	want := `switchboard.interval_ms:1500|g|#node:n_1
switchboard.sms.in:3999|c|#node:n_1
switchboard.agents:3|g|#node:n_1
switchboard.drift:0|g|#node:n_1
switchboard.drift:-2|g|#node:n_1
switchboard.queue.depth:7|g|#node:n_1
switchboard.route.latency.count:100|c|#node:n_1
switchboard.route.latency.p50:1|ms|#node:n_1
switchboard.route.latency.p90:1|ms|#node:n_1
switchboard.route.latency.p99:5|ms|#node:n_1
switchboard.route.latency.max:10.3|ms|#node:n_1
switchboard.idle.count:0|c|#node:n_1
`
	if got := lines(); got != want {
		t.Fatalf("first interval:\n%s\nwant:\n%s", got, want)
	}
	c.Add(2)
	tm.Observe(2 * time.Millisecond)
	clock.Advance(time.Second)
	want = `switchboard.interval_ms:1000|g|#node:n_1
switchboard.sms.in:2|c|#node:n_1
switchboard.agents:3|g|#node:n_1
switchboard.drift:0|g|#node:n_1
switchboard.drift:-2|g|#node:n_1
switchboard.queue.depth:7|g|#node:n_1
switchboard.route.latency.count:1|c|#node:n_1
switchboard.route.latency.p50:2|ms|#node:n_1
switchboard.route.latency.p90:2|ms|#node:n_1
switchboard.route.latency.p99:2|ms|#node:n_1
switchboard.route.latency.max:2|ms|#node:n_1
switchboard.idle.count:0|c|#node:n_1
`
	if got := lines(); got != want {
		t.Fatalf("second interval:\n%s\nwant:\n%s", got, want)
	}
}

func TestTimingPercentilesWithinABucket(t *testing.T) {
	e := newTestEmitter(t, Options{Group: "239.255.77.77:9"})
	tm := e.Timing("t")
	var vals []time.Duration
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * 37 * time.Microsecond
		vals = append(vals, d)
		tm.Observe(d)
	}
	s := tm.summary()
	if s.Count != 1000 || s.Max != vals[999] {
		t.Fatalf("count %d max %s", s.Count, s.Max)
	}
	for _, q := range []struct {
		got  time.Duration
		rank int
	}{{s.P50, 500}, {s.P90, 900}, {s.P99, 990}} {
		want := vals[q.rank-1]
		if diff := float64(q.got-want) / float64(want); diff > 1.0/16 || diff < -1.0/16 {
			t.Errorf("rank %d: %s, want %s within 1/16", q.rank, q.got, want)
		}
	}
}

// logCounter counts log records by level.
type logCounter struct {
	mu     sync.Mutex
	levels map[slog.Level]int
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.levels[r.Level]++
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }
func (l *logCounter) count() map[slog.Level]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.levels)
}

func TestEmitterFailsSoft(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		logs map[slog.Level]int
		// An interface may appear later (VPN, hot-plug): only set-up fails.
		valid bool
	}{
		{"no such interface", Options{Iface: "nosuchif0"}, map[slog.Level]int{slog.LevelWarn: 1}, true},
		{"not a multicast group", Options{Group: "127.0.0.1:5554"}, map[slog.Level]int{slog.LevelError: 1}, false},
		{"garbage group", Options{Group: "nonsense"}, map[slog.Level]int{slog.LevelError: 1}, false},
		{"interval too short", Options{Interval: time.Microsecond}, map[slog.Level]int{slog.LevelError: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &logCounter{levels: map[slog.Level]int{}}
			tt.opts.Logger = slog.New(h)
			tt.opts.RetryEvery = time.Nanosecond // retry on every flush: still logs once
			e := NewEmitter(tt.opts)
			defer e.Close()
			c := e.Counter("x")
			c.Inc()
			e.Timing("t").Observe(time.Second)
			for range 3 {
				if err := e.Flush(); err != ErrNotSending {
					t.Fatalf("Flush = %v, want ErrNotSending", err)
				}
			}
			if c.Total() != 1 {
				t.Fatalf("counter total %d", c.Total())
			}
			if got := h.count(); fmt.Sprint(got) != fmt.Sprint(tt.logs) {
				t.Fatalf("logs %v, want %v", got, tt.logs)
			}
			if err := tt.opts.Validate(); (err == nil) != tt.valid {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
	var nilCounter *Counter
	nilCounter.Inc() // optional metrics need no nil checks
	var nilTiming *Timing
	nilTiming.Observe(time.Second)
	var nilGauge *Gauge
	nilGauge.Set(1)
}

func TestValidateNamesTheFlag(t *testing.T) {
	err := Options{Group: "1.2.3.4:5"}.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "-stats-group: ") {
		t.Fatalf("Validate = %v", err)
	}
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestRunFlushesOnTickAndOnStop(t *testing.T) {
	requireMulticastLo(t)
	group := testGroup(t)
	var mu sync.Mutex
	var reports []Report
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := Listen(ctx, ListenOptions{Group: group, Iface: "lo", Logger: quietLogger(),
		Aggregator: AggregatorOptions{OnReport: func(r Report) { mu.Lock(); reports = append(reports, r); mu.Unlock() }}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tick := make(chan time.Time)
	e := newTestEmitter(t, Options{Group: group, Node: "n1", Tick: tick, ZeroTTL: true})
	c := e.Counter("sms.in")
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(runCtx); close(done) }()
	c.Add(2)
	tick <- time.Now()
	sbt.WaitFor(t, 2*time.Second, "first flush", func() bool { return e.Stats().Sent == 1 })
	c.Add(5)
	stop()
	<-done
	sbt.WaitFor(t, 2*time.Second, "two reports", func() bool { mu.Lock(); defer mu.Unlock(); return len(reports) == 2 })
	if reports[0].Metrics["sms.in"] != 2 || reports[1].Metrics["sms.in"] != 5 {
		t.Fatalf("reports %+v", reports)
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	e := newTestEmitter(t, Options{Group: "239.255.77.77:9"})
	c, g, tm := e.Counter("c"), e.Gauge("g"), e.Timing("t")
	if n := testing.AllocsPerRun(1000, func() {
		c.Inc()
		c.Add(3)
		g.Set(5)
		tm.Observe(time.Millisecond)
	}); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}
