package udpstats

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCounterInc is the hot path: run with -cpu 2 for two goroutines
// hammering one counter. The target is <= 20 ns/op and 0 allocs/op.
func BenchmarkCounterInc(b *testing.B) {
	e := NewEmitter(Options{Group: "239.255.77.77:9", Logger: quietLogger()})
	defer e.Close()
	c := e.Counter("sms.in")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

// BenchmarkBaselineSharedAtomic is the naive counter, for comparison in the
// same run: one atomic.Int64 that every goroutine adds to.
func BenchmarkBaselineSharedAtomic(b *testing.B) {
	var c atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(1)
		}
	})
}

func BenchmarkTimingObserve(b *testing.B) {
	e := NewEmitter(Options{Group: "239.255.77.77:9", Logger: quietLogger()})
	defer e.Close()
	t := e.Timing("route.latency")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := 1500 * time.Microsecond
		for pb.Next() {
			t.Observe(d)
			d += 7
		}
	})
}

// BenchmarkFlush is the once-per-interval cost of a node with 20 counters,
// 5 gauges, 3 gauge funcs and 3 timings (packed, not sent).
func BenchmarkFlush(b *testing.B) {
	e := NewEmitter(Options{Group: "239.255.77.77:9", Logger: quietLogger()})
	defer e.Close()
	e.Close() // measure collect+pack, not the kernel
	for i := range 20 {
		e.Counter(fmt.Sprintf("counter.%d", i)).Inc()
	}
	for i := range 5 {
		e.Gauge(fmt.Sprintf("gauge.%d", i)).Set(int64(i))
	}
	for i := range 3 {
		e.GaugeFunc(fmt.Sprintf("func.%d", i), func() int64 { return 1 })
		e.Timing(fmt.Sprintf("timing.%d", i)).Observe(time.Millisecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.flushMu.Lock()
		e.pack(e.collect(time.Second))
		e.flushMu.Unlock()
	}
}

// benchDatagrams are full-size datagrams from one node, as the emitter packs
// them: 1 sequence line and about 30 metric lines each.
func benchDatagrams(n int) [][]byte {
	e := NewEmitter(Options{Group: "239.255.77.77:9", Node: "n1", Logger: quietLogger()})
	defer e.Close()
	var units [][]byte
	for i := range 30 * n {
		units = append(units, fmt.Appendf(nil, "switchboard.metric.number.%d:%d|c|#node:n1", i%30, i))
	}
	return e.pack(units)
}

// BenchmarkAggregatorAdd is the listener's cost per datagram (decode and
// aggregate); datagrams/s is reported. The target is >= 50,000/s.
func BenchmarkAggregatorAdd(b *testing.B) {
	dgrams := benchDatagrams(1000)
	a := NewAggregator(AggregatorOptions{OnReport: func(Report) {}})
	now := testEpoch
	b.ReportAllocs()
	b.SetBytes(int64(len(dgrams[0])))
	i := 0
	for b.Loop() {
		if i == len(dgrams) { // the node "restarts": costs one extra report
			i = 0
		}
		a.Add(now, "192.0.2.1:5554", dgrams[i])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "datagrams/s")
}

func BenchmarkDecoderParse(b *testing.B) {
	d := benchDatagrams(1)[0]
	var dec Decoder
	n := 0
	fn := func(Metric) { n++ }
	b.ReportAllocs()
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		dec.Parse(d, fn)
	}
}
