package udpstats

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// reportLog collects a Listener's reports.
type reportLog struct {
	mu      sync.Mutex
	reports []Report
}

func (r *reportLog) add(rep Report) { r.mu.Lock(); r.reports = append(r.reports, rep); r.mu.Unlock() }

func (r *reportLog) of(node string) []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Report
	for _, rep := range r.reports {
		if rep.Node == node {
			out = append(out, rep)
		}
	}
	return out
}

func startListener(t *testing.T, group string, log *reportLog) *Listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := Listen(ctx, ListenOptions{Group: group, Iface: "lo", Logger: quietLogger(),
		Aggregator: AggregatorOptions{OnReport: log.add}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-l.Done() })
	return l
}

func TestTwoEmittersToListenerOverMulticast(t *testing.T) {
	requireMulticastLo(t)
	group := testGroup(t)
	var log reportLog
	l := startListener(t, group, &log)

	clock := newClock()
	n1 := newTestEmitter(t, Options{Group: group, Iface: "lo", TTL: 1, Node: "n1", Now: clock.Now})
	n2 := newTestEmitter(t, Options{Group: group, Iface: "lo", ZeroTTL: true, Node: "n2", Now: clock.Now})

	in1, in2 := n1.Counter("sms.in"), n2.Counter("sms.in")
	n1.Gauge("agents").Set(4)
	n2.Gauge("agents").Set(-2)
	n1.GaugeFunc("queue.depth", func() int64 { return 7 })
	lat := n1.Timing("route.latency")
	var wg sync.WaitGroup
	for g := range 2 { // two goroutines per node, both nodes at once
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 1000 {
				in1.Inc()
			}
			for range 49 {
				lat.Observe(time.Millisecond)
			}
			lat.Observe(time.Duration(5+g*5) * time.Millisecond)
		}()
		go func() {
			defer wg.Done()
			in2.Add(3)
		}()
	}
	wg.Wait()
	clock.Advance(time.Second)
	flush := func(e *Emitter) {
		t.Helper()
		if err := e.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	flush(n1)
	flush(n2)
	sbt.WaitFor(t, 2*time.Second, "first interval of both nodes", func() bool {
		return len(log.of("n1")) == 1 && len(log.of("n2")) == 1
	})
	check := func(r Report, seq, lost uint64, iv time.Duration, want map[string]float64) {
		t.Helper()
		if r.Seq != seq || r.Lost != lost || r.Interval != iv || r.Partial {
			t.Errorf("%s: seq %d lost %d interval %s partial %v, want %d %d %s false",
				r.Node, r.Seq, r.Lost, r.Interval, r.Partial, seq, lost, iv)
		}
		if !maps.Equal(r.Metrics, want) {
			t.Errorf("%s metrics\n%v\nwant\n%v", r.Node, r.Metrics, want)
		}
	}
	check(log.of("n1")[0], 1, 0, time.Second, map[string]float64{
		"sms.in": 2000, "agents": 4, "queue.depth": 7,
		"route.latency.count": 100, "route.latency.p50": 1, "route.latency.p90": 1,
		"route.latency.p99": 5, "route.latency.max": 10,
	})
	// A negative gauge arrives as 0 then -2: the decoder applies both.
	check(log.of("n2")[0], 1, 0, time.Second, map[string]float64{"sms.in": 6, "agents": -2})

	// Second interval: half as long; n1 loses two datagrams on the way.
	in1.Add(7)
	clock.Advance(500 * time.Millisecond)
	n1.flushMu.Lock()
	n1.seq += 2 // as if two datagrams had been sent and lost
	n1.flushMu.Unlock()
	flush(n1)
	flush(n2)
	sbt.WaitFor(t, 2*time.Second, "second interval of both nodes", func() bool {
		return len(log.of("n1")) == 2 && len(log.of("n2")) == 2
	})
	check(log.of("n1")[1], 4, 2, 500*time.Millisecond, map[string]float64{
		"sms.in": 7, "agents": 4, "queue.depth": 7, "route.latency.count": 0,
	})
	check(log.of("n2")[1], 2, 0, 500*time.Millisecond, map[string]float64{"sms.in": 0, "agents": -2})
	if r := log.of("n1")[1]; func() float64 { v, _ := r.Rate("sms.in"); return v }() != 14 {
		t.Errorf("rate of %+v, want 14/s", r)
	}

	nodes := l.Aggregator().Nodes()
	if len(nodes) != 2 || nodes[0].Node != "n1" || nodes[0].Lost != 2 || nodes[1].Lost != 0 {
		t.Fatalf("nodes %+v", nodes)
	}
	if st := l.Aggregator().Stats(); st.Datagrams != 4 || st.BadLines != 0 || st.BadDatagrams != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMultiDatagramIntervalOverMulticast(t *testing.T) {
	requireMulticastLo(t)
	group := testGroup(t)
	var log reportLog
	startListener(t, group, &log)
	e := newTestEmitter(t, Options{Group: group, Node: "big", ZeroTTL: true})
	want := map[string]float64{}
	for i := range 300 {
		name := fmt.Sprintf("queue.shard%03d.depth.with.a.long.name", i)
		e.Gauge(name).Set(int64(i))
		want[name] = float64(i)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if e.Stats().Sent < 5 {
		t.Fatalf("only %d datagrams", e.Stats().Sent)
	}
	sbt.WaitFor(t, 2*time.Second, "the interval", func() bool { return len(log.of("big")) == 1 })
	r := log.of("big")[0]
	if r.Partial || r.Seq != uint64(e.Stats().Sent) || !maps.Equal(r.Metrics, want) {
		t.Fatalf("partial %v seq %d, %d metrics", r.Partial, r.Seq, len(r.Metrics))
	}
}

// TestNoLossAt5000DatagramsPerSecond sends 5,000 datagrams of about 1 KB in
// one second on lo, 50 every 10ms, and expects the listener to count every
// one and report no loss.
func TestNoLossAt5000DatagramsPerSecond(t *testing.T) {
	requireMulticastLo(t)
	if testing.Short() {
		t.Skip("takes a second")
	}
	group := testGroup(t)
	var log reportLog
	l := startListener(t, group, &log)
	e := newTestEmitter(t, Options{Group: group, Node: "load", ZeroTTL: true})
	for i := range 20 {
		e.Counter(fmt.Sprintf("load.counter.number.%02d", i)).Inc()
	}
	const total, burst = 5000, 50
	start := time.Now()
	for i := 0; i < total; i += burst {
		for range burst {
			_ = e.Flush()
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+burst) * time.Second / total)))
	}
	if s := e.Stats(); s.Sent != total || s.SendErrors != 0 {
		t.Fatalf("emitter %+v", s)
	}
	sbt.WaitFor(t, 3*time.Second, "all datagrams", func() bool { return l.Aggregator().Stats().Datagrams >= total })
	n := l.Aggregator().Nodes()
	if len(n) != 1 || n[0].Lost != 0 || n[0].Seq != total {
		t.Fatalf("nodes %+v", n)
	}
	t.Logf("5000 datagrams in %s, none lost", time.Since(start).Round(time.Millisecond))
}
