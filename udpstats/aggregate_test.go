package udpstats

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
)

func seqDgram(node string, seq uint64, part, of int, lines ...string) []byte {
	head := fmt.Sprintf("switchboard.seq:%d|g|#node:%s,part:%d/%d", seq, node, part, of)
	return []byte(strings.Join(append([]string{head}, lines...), "\n"))
}

func TestAggregator(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before this datagram (or tick)
		dgram []byte        // nil: Tick
	}
	type want struct {
		node     string
		seq      uint64
		lost     uint64
		partial  bool
		interval time.Duration
		metrics  map[string]float64
	}
	tests := []struct {
		name     string
		steps    []step
		reports  []want
		lost     uint64
		restarts int
		stats    AggregatorStats
	}{
		{
			name: "two-part interval, then a gap of two",
			steps: []step{
				{0, seqDgram("n1", 1, 1, 2, "switchboard.interval_ms:1000|g|#node:n1", "switchboard.sms.in:3|c|#node:n1")},
				{0, seqDgram("n1", 2, 2, 2, "switchboard.agents:4|g|#node:n1")},
				{time.Second, seqDgram("n1", 5, 1, 1, "switchboard.sms.in:1|c|#node:n1")},
			},
			reports: []want{
				{"n1", 2, 0, false, time.Second, map[string]float64{"sms.in": 3, "agents": 4}},
				{"n1", 5, 2, false, time.Second, map[string]float64{"sms.in": 1}},
			},
			lost:  2,
			stats: AggregatorStats{Datagrams: 3},
		},
		{
			name: "second part lost: closed as partial by the next interval",
			steps: []step{
				{0, seqDgram("n1", 1, 1, 2, "switchboard.sms.in:3|c|#node:n1")},
				{time.Second, seqDgram("n1", 3, 1, 1, "switchboard.sms.in:1|c|#node:n1")},
			},
			reports: []want{
				{"n1", 1, 1, true, time.Second, map[string]float64{"sms.in": 3}},
				{"n1", 3, 1, false, time.Second, map[string]float64{"sms.in": 1}},
			},
			lost:  1,
			stats: AggregatorStats{Datagrams: 2},
		},
		{
			name: "last part lost: closed as partial by Tick after FlushTimeout",
			steps: []step{
				{0, seqDgram("n1", 1, 1, 2, "switchboard.sms.in:3|c|#node:n1")},
				{100 * time.Millisecond, nil},
				{200 * time.Millisecond, nil},
			},
			reports: []want{{"n1", 1, 0, true, time.Second, map[string]float64{"sms.in": 3}}},
			stats:   AggregatorStats{Datagrams: 1},
		},
		{
			name: "listener started mid-interval: partial",
			steps: []step{
				{0, seqDgram("n1", 8, 2, 2, "switchboard.agents:4|g|#node:n1")},
				{time.Second, seqDgram("n1", 9, 1, 1, "switchboard.agents:5|g|#node:n1")},
			},
			reports: []want{
				{"n1", 8, 0, true, time.Second, map[string]float64{"agents": 4}},
				{"n1", 9, 0, false, time.Second, map[string]float64{"agents": 5}},
			},
			stats: AggregatorStats{Datagrams: 2},
		},
		{
			name: "duplicate ignored, restart detected",
			steps: []step{
				{0, seqDgram("n1", 7, 1, 1, "switchboard.sms.in:3|c|#node:n1")},
				{0, seqDgram("n1", 7, 1, 1, "switchboard.sms.in:3|c|#node:n1")},
				{time.Second, seqDgram("n1", 1, 1, 1, "switchboard.sms.in:2|c|#node:n1")},
			},
			reports: []want{
				{"n1", 7, 0, false, time.Second, map[string]float64{"sms.in": 3}},
				{"n1", 1, 0, false, time.Second, map[string]float64{"sms.in": 2}},
			},
			restarts: 1,
			stats:    AggregatorStats{Datagrams: 3, Duplicates: 1},
		},
		{
			name: "plain StatsD: summed per Interval, sample rates and relative gauges applied",
			steps: []step{
				{0, []byte("hits:1|c|@0.5\ntemp:10|g\nusers:ann|s")},
				{100 * time.Millisecond, []byte("hits:2|c\ntemp:-3|g\nusers:bob|s\nusers:ann|s")},
				{time.Second, nil},
				{0, []byte("temp:+1|g")},
				{time.Second, nil},
			},
			reports: []want{
				{"192.0.2.9:99", 0, 0, false, time.Second, map[string]float64{"hits": 4, "temp": 7, "users": 2}},
				{"192.0.2.9:99", 0, 0, false, time.Second, map[string]float64{"temp": 8}},
			},
			stats: AggregatorStats{Datagrams: 3},
		},
		{
			name: "garbage is counted, not fatal",
			steps: []step{
				{0, []byte("\x00\xff\xfe")},
				{0, []byte("switchboard.seq:x|g|#node:n1,part:1/1\nok:1|c|#node:n2\nbroken")},
				{0, []byte("switchboard.seq:1|g|#node:n1,part:3/2")},
				{time.Second, nil},
			},
			reports: []want{
				{"n1", 0, 0, false, time.Second, map[string]float64{"seq": 1}},
				{"n2", 0, 0, false, time.Second, map[string]float64{"ok": 1}},
			},
			stats: AggregatorStats{Datagrams: 3, BadLines: 3, BadDatagrams: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Report
			a := NewAggregator(AggregatorOptions{OnReport: func(r Report) { got = append(got, r) }})
			now := testEpoch
			for _, s := range tt.steps {
				now = now.Add(s.after)
				if s.dgram == nil {
					a.Tick(now)
				} else {
					a.Add(now, "192.0.2.9:99", s.dgram)
				}
			}
			if len(got) != len(tt.reports) {
				t.Fatalf("%d reports, want %d: %+v", len(got), len(tt.reports), got)
			}
			for i, w := range tt.reports {
				r := got[i]
				if r.Node != w.node || r.Seq != w.seq || r.Lost != w.lost || r.Partial != w.partial ||
					r.Interval != w.interval || !maps.Equal(r.Metrics, w.metrics) {
					t.Errorf("report %d: %+v\nwant %+v", i, r, w)
				}
			}
			if st := a.Stats(); st != tt.stats {
				t.Errorf("stats %+v, want %+v", st, tt.stats)
			}
			var lost uint64
			restarts := 0
			for _, n := range a.Nodes() {
				lost += n.Lost
				restarts += n.Restarts
			}
			if lost != tt.lost || restarts != tt.restarts {
				t.Errorf("lost %d restarts %d, want %d %d", lost, restarts, tt.lost, tt.restarts)
			}
		})
	}
}

func TestAggregatorForgetsSilentNodes(t *testing.T) {
	a := NewAggregator(AggregatorOptions{})
	a.Add(testEpoch, "x", seqDgram("n1", 1, 1, 1))
	a.Add(testEpoch.Add(20*time.Second), "x", seqDgram("n2", 1, 1, 1))
	a.Tick(testEpoch.Add(29 * time.Second))
	if n := a.Nodes(); len(n) != 2 {
		t.Fatalf("nodes %+v", n)
	}
	a.Tick(testEpoch.Add(30 * time.Second))
	if n := a.Nodes(); len(n) != 1 || n[0].Node != "n2" {
		t.Fatalf("nodes %+v", n)
	}
}

func TestReportJSON(t *testing.T) {
	r := Report{Node: "n1", Time: testEpoch, Seq: 41, Lost: 2, Interval: 1500 * time.Millisecond,
		Metrics: map[string]float64{"sms.in": 3, "route.latency.p99": 3.2}}
	b, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"node":"n1","time":"2026-11-21T12:00:00Z","seq":41,"lost":2,"interval_ms":1500,"metrics":{"route.latency.p99":3.2,"sms.in":3}}`
	if string(b) != want {
		t.Fatalf("%s\nwant %s", b, want)
	}
}

// A sender's numbers that add up to more than a float64 holds (a huge
// counter scaled by its sample rate, sums of huge counters, relative
// gauges) must not turn into ±Inf: a report with one cannot be written as
// JSON, and `udpstats -json` used to exit on the first such datagram. The
// line is refused as malformed instead; the other lines count.
func TestAggregatorRefusesNonFiniteResults(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lines string
	}{
		{"scaled counter", "x:1e308|c|@0.1"},
		{"sum of counters", "x:1e308|c\nx:1e308|c"},
		{"relative gauge", "g:1e308|g\ng:+1e308|g"},
		{"negative relative gauge", "g:-1e308|g\ng:-1e308|g"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var reps []Report
			a := NewAggregator(AggregatorOptions{OnReport: func(r Report) { reps = append(reps, r) }})
			a.Add(testEpoch, "x", []byte("switchboard.seq:1|g|#node:n1,part:1/1\nswitchboard."+
				strings.ReplaceAll(tt.lines, "\n", "|#node:n1\nswitchboard.")+"|#node:n1\nswitchboard.ok:3|c|#node:n1"))
			if len(reps) != 1 {
				t.Fatalf("reports %+v", reps)
			}
			if _, err := json.Marshal(reps[0]); err != nil {
				t.Fatalf("report cannot be written as JSON: %v (%v)", err, reps[0].Metrics)
			}
			if reps[0].Metrics["ok"] != 3 {
				t.Errorf("good line lost: %v", reps[0].Metrics)
			}
			if st := a.Stats(); st.BadLines == 0 {
				t.Errorf("the overflowing line is not counted as bad: %+v", st)
			}
		})
	}
}

// interval_ms from outside is bounded: a value too large for a Duration
// must not wrap into a negative interval.
func TestAggregatorIgnoresAbsurdInterval(t *testing.T) {
	var reps []Report
	a := NewAggregator(AggregatorOptions{OnReport: func(r Report) { reps = append(reps, r) }})
	a.Add(testEpoch, "x", []byte("switchboard.seq:1|g|#node:n1,part:1/1\nswitchboard.interval_ms:1e300|g|#node:n1\nswitchboard.c:4|c|#node:n1"))
	if len(reps) != 1 || reps[0].Interval != DefaultInterval {
		t.Fatalf("interval %v, want the default %v", reps[0].Interval, DefaultInterval)
	}
}

// FuzzAggregatorReports: whatever arrives on the group, the aggregator does
// not panic and every report it makes can be written as a -json line.
func FuzzAggregatorReports(f *testing.F) {
	f.Add([]byte("switchboard.seq:1|g|#node:n1,part:1/1\nswitchboard.interval_ms:1000|g|#node:n1\nswitchboard.sms.in:3|c|#node:n1"),
		[]byte("switchboard.seq:2|g|#node:n1,part:1/1\nswitchboard.sms.in:1e308|c|@0.5|#node:n1"))
	f.Add([]byte("x:1e308|c|#node:a\nx:1e308|c|#node:a"), []byte("g:+1e308|g|#node:a\ng:+1e308|g|#node:a"))
	f.Fuzz(func(t *testing.T, d1, d2 []byte) {
		var reps []Report
		a := NewAggregator(AggregatorOptions{OnReport: func(r Report) { reps = append(reps, r) }, Logger: quietLogger()})
		a.Add(testEpoch, "x", d1)
		a.Add(testEpoch.Add(time.Millisecond), "x", d2)
		a.Add(testEpoch.Add(2*time.Millisecond), "x", d1)
		a.Tick(testEpoch.Add(time.Hour))
		for _, r := range reps {
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("report cannot be written as JSON: %v: %+v", err, r)
			}
		}
	})
}
