package udpstats

import (
	"encoding/json"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AggregatorOptions configure an [Aggregator]. Every zero value means the
// default named on the field.
type AggregatorOptions struct {
	// Prefix is removed from metric names and names the sequence and
	// interval lines (<Prefix>seq, <Prefix>interval_ms). Zero: DefaultPrefix;
	// NoPrefix for none.
	Prefix   string
	NoPrefix bool
	// Interval is assumed for a node until it sends interval_ms, and is how
	// long lines from plain StatsD senders (no sequence line) are summed into
	// one report. Zero: DefaultInterval.
	Interval time.Duration
	// FlushTimeout closes an interval whose remaining datagrams have not
	// arrived after this long, as partial. A node sends all datagrams of an
	// interval back to back. Zero: 250ms.
	FlushTimeout time.Duration
	// DropAfter forgets a node not heard from for this long. Zero: 30s.
	DropAfter time.Duration
	// OnReport, if set, receives every closed interval. It is called from the
	// goroutine calling Add or Tick, without locks held; it must not block
	// (a Listener's reading stops while it runs).
	OnReport func(Report)
	// Logger: zero slog.Default().
	Logger *slog.Logger
}

func (o AggregatorOptions) withDefaults() AggregatorOptions {
	if o.NoPrefix {
		o.Prefix = ""
	} else if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 250 * time.Millisecond
	}
	if o.DropAfter <= 0 {
		o.DropAfter = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Report is one interval of one node.
type Report struct {
	Node string
	Addr string    // source address of the last datagram
	Time time.Time // when the interval was closed (the listener's clock)
	Seq  uint64    // sequence number of the interval's last datagram; 0 for plain StatsD
	Lost uint64    // datagrams of this node lost since the listener started
	// Interval is the length the values cover: interval_ms sent by the node,
	// else the node's last known interval, else AggregatorOptions.Interval.
	Interval time.Duration
	// Partial is true when datagrams of this interval were lost or arrived
	// before the listener started; its values are then incomplete.
	Partial bool
	// Metrics are the values, by name without the prefix. Counters are the
	// count during the interval (sample rates applied), gauges the last value
	// (relative gauges applied to it), timers the last value sent, sets the
	// number of distinct members.
	Metrics map[string]float64
	// Types are the StatsD types of Metrics ("c", "g", "ms", ...).
	Types map[string]string
}

// Rate is a counter's value per second, or the value itself for others.
func (r *Report) Rate(name string) (float64, bool) {
	v, ok := r.Metrics[name]
	if !ok {
		return 0, false
	}
	if r.Types[name] == "c" && r.Interval > 0 {
		return v / r.Interval.Seconds(), true
	}
	return v, true
}

// MarshalJSON writes the monitor's -json line:
// {"node":"n1","time":"...","seq":41,"lost":0,"interval_ms":1000,"metrics":{"sms.in":3}}
// with "partial":true only when partial.
func (r Report) MarshalJSON() ([]byte, error) {
	type jsonReport struct {
		Node       string             `json:"node"`
		Time       time.Time          `json:"time"`
		Seq        uint64             `json:"seq"`
		Lost       uint64             `json:"lost"`
		IntervalMS float64            `json:"interval_ms"`
		Partial    bool               `json:"partial,omitempty"`
		Metrics    map[string]float64 `json:"metrics"`
	}
	m := r.Metrics
	if m == nil {
		m = map[string]float64{}
	}
	return json.Marshal(jsonReport{r.Node, r.Time, r.Seq, r.Lost,
		float64(r.Interval.Microseconds()) / 1000, r.Partial, m})
}

// NodeState is what the Aggregator knows about one node.
type NodeState struct {
	Node      string
	Addr      string
	FirstSeen time.Time
	LastSeen  time.Time
	Seq       uint64
	Lost      uint64 // datagrams missing from the sequence
	Restarts  int    // times the sequence went backwards
	Datagrams uint64
	Interval  time.Duration // the node's emit interval, as last reported
	Last      *Report       // the last closed interval, nil before the first
}

// AggregatorStats count what the Aggregator received.
type AggregatorStats struct {
	Datagrams    uint64 // datagrams received
	BadLines     uint64 // malformed lines skipped
	BadDatagrams uint64 // datagrams with no usable line
	Duplicates   uint64 // datagrams whose seq was already seen
}

// Aggregator turns datagrams into per-node state and per-interval reports.
// It is safe for concurrent use.
type Aggregator struct {
	opts    AggregatorOptions
	seqName string
	ivName  string

	mu    sync.Mutex
	dec   Decoder
	nodes map[string]*nodeState
	stats AggregatorStats
	out   []Report // reports to hand to OnReport after unlocking
}

type nodeState struct {
	NodeState
	names map[string]string // interned metric names
	cur   *openInterval
}

type openInterval struct {
	start      time.Time
	firstSeq   uint64
	lastSeq    uint64
	parts, got int // parts == 0: plain StatsD, closed by time
	partial    bool
	interval   time.Duration
	metrics    map[string]float64
	types      map[string]string
	sets       map[string]map[string]struct{}
}

// NewAggregator makes an Aggregator; it has no goroutines.
func NewAggregator(opts AggregatorOptions) *Aggregator {
	opts = opts.withDefaults()
	return &Aggregator{
		opts:    opts,
		seqName: opts.Prefix + "seq",
		ivName:  opts.Prefix + "interval_ms",
		nodes:   make(map[string]*nodeState),
	}
}

// seqInfo is what the sequence line of a datagram says.
type seqInfo struct {
	ok       bool
	node     string
	seq      uint64
	part, of int
}

// Add processes one datagram received at now from addr (used as the node
// name for lines without a node tag).
func (a *Aggregator) Add(now time.Time, addr string, b []byte) {
	a.mu.Lock()
	a.stats.Datagrams++
	var (
		si    seqInfo
		st    *nodeState
		good  int
		first = true
	)
	bad := a.dec.Parse(b, func(m Metric) {
		if first {
			first = false
			si = a.seqLine(&m)
			if si.ok {
				st = a.node(now, si.node, addr)
				if !a.sequence(now, st, si) {
					st = nil // duplicate: ignore the datagram
				}
				good++
				return
			}
		}
		if si.ok && st == nil {
			return
		}
		target := st
		if !si.ok {
			node, ok := m.Tag("node")
			if !ok || node == "" {
				node = addr
			}
			target = a.node(now, node, addr)
			if target.cur == nil {
				target.cur = a.newInterval(now, 0, 0)
			}
		}
		if !a.apply(target, &m) {
			a.stats.BadLines++
			return
		}
		good++
	})
	a.stats.BadLines += uint64(bad)
	if good == 0 {
		a.stats.BadDatagrams++
	}
	if st != nil && st.cur != nil && st.cur.parts > 0 && st.cur.got == st.cur.parts {
		a.close(now, st)
	}
	out := a.takeReports()
	a.mu.Unlock()
	a.deliver(out)
}

// seqLine recognises "<prefix>seq:N|g|#node:X,part:i/k".
func (a *Aggregator) seqLine(m *Metric) seqInfo {
	if m.Name != a.seqName || m.Type != "g" || m.Sign != 0 {
		return seqInfo{}
	}
	node, ok := m.Tag("node")
	part, ok2 := m.Tag("part")
	if !ok || !ok2 || node == "" {
		return seqInfo{}
	}
	i, k, ok := strings.Cut(part, "/")
	pi, err1 := strconv.Atoi(i)
	pk, err2 := strconv.Atoi(k)
	seq, err3 := strconv.ParseUint(m.Raw, 10, 64)
	if !ok || err1 != nil || err2 != nil || err3 != nil || pi < 1 || pk < pi {
		return seqInfo{}
	}
	return seqInfo{ok: true, node: node, seq: seq, part: pi, of: pk}
}

func (a *Aggregator) node(now time.Time, name, addr string) *nodeState {
	st, ok := a.nodes[name]
	if !ok {
		name = strings.Clone(name)
		st = &nodeState{
			NodeState: NodeState{Node: name, FirstSeen: now, Interval: a.opts.Interval},
			names:     make(map[string]string),
		}
		a.nodes[name] = st
	}
	if st.Addr != addr {
		st.Addr = strings.Clone(addr)
	}
	st.LastSeen = now
	st.Datagrams++
	return st
}

// sequence accounts for a sequenced datagram and opens or continues its
// interval; false means it is a duplicate to ignore.
func (a *Aggregator) sequence(now time.Time, st *nodeState, si seqInfo) bool {
	if st.Seq != 0 || st.Last != nil || st.cur != nil {
		switch {
		case si.seq == st.Seq:
			a.stats.Duplicates++
			st.Datagrams--
			return false
		case si.seq < st.Seq: // the node restarted
			st.Restarts++
			if st.cur != nil {
				a.close(now, st)
			}
		case si.seq > st.Seq+1:
			st.Lost += si.seq - st.Seq - 1
		}
	}
	st.Seq = si.seq
	cur := st.cur
	if cur != nil && (cur.parts == 0 || si.part == 1 || cur.parts != si.of ||
		cur.firstSeq+uint64(si.part-1) != si.seq) {
		a.close(now, st)
		cur = nil
	}
	if cur == nil {
		cur = a.newInterval(now, si.seq-uint64(si.part-1), si.of)
		cur.partial = si.part != 1 // started mid-interval
		st.cur = cur
	}
	cur.got++
	cur.lastSeq = si.seq
	return true
}

func (a *Aggregator) newInterval(now time.Time, firstSeq uint64, parts int) *openInterval {
	return &openInterval{
		start:    now,
		firstSeq: firstSeq,
		parts:    parts,
		metrics:  make(map[string]float64),
		types:    make(map[string]string),
	}
}

// maxIntervalMS bounds the interval_ms a sender may claim: beyond it the
// line is refused (a huge value would wrap around as a Duration).
const maxIntervalMS = float64(24 * time.Hour / time.Millisecond)

// apply adds one value to st's open interval. It returns false, changing
// nothing, for a value the interval cannot hold: an interval_ms out of
// range, or a result that is not a finite number (a huge counter scaled by
// its sample rate, sums of huge values), which no report could carry as
// JSON.
func (a *Aggregator) apply(st *nodeState, m *Metric) bool {
	cur := st.cur
	if m.Name == a.ivName && m.Type == "g" {
		ms := m.Value
		if ms > maxIntervalMS || ms < 0 {
			return false
		}
		if d := time.Duration(ms * float64(time.Millisecond)); d > 0 {
			cur.interval = d
			st.Interval = d
		}
		return true
	}
	name, ok := st.names[m.Name]
	if !ok {
		name = strings.TrimPrefix(strings.Clone(m.Name), a.opts.Prefix)
		if len(st.names) < 10000 { // a bound against a sender inventing names
			st.names[strings.Clone(m.Name)] = name
		}
	}
	old, seen := cur.metrics[name]
	switch m.Type {
	case "c":
		v := old + m.Value/m.SampleRate
		if math.IsInf(v, 0) {
			return false
		}
		cur.metrics[name] = v
	case "g":
		if m.Sign != 0 {
			if !seen && st.Last != nil {
				old = st.Last.Metrics[name]
			}
			v := old + m.Value
			if math.IsInf(v, 0) {
				return false
			}
			cur.metrics[name] = v
		} else {
			cur.metrics[name] = m.Value
		}
	case "s":
		if cur.sets == nil {
			cur.sets = make(map[string]map[string]struct{})
		}
		set := cur.sets[name]
		if set == nil {
			set = make(map[string]struct{})
			cur.sets[name] = set
		}
		if _, ok := set[m.Raw]; !ok {
			set[strings.Clone(m.Raw)] = struct{}{}
		}
		cur.metrics[name] = float64(len(set))
	default: // ms, h, d: our emitter sends one summary value per name
		cur.metrics[name] = m.Value
	}
	if !seen {
		cur.types[name] = m.Type
	}
	return true
}

// close turns st's open interval into a Report.
func (a *Aggregator) close(now time.Time, st *nodeState) {
	cur := st.cur
	st.cur = nil
	iv := cur.interval
	if iv == 0 {
		iv = st.Interval
	}
	seq := st.Seq
	if cur.parts > 0 {
		seq = cur.lastSeq
	}
	r := &Report{
		Node:     st.Node,
		Addr:     st.Addr,
		Time:     now,
		Seq:      seq,
		Lost:     st.Lost,
		Interval: iv,
		Partial:  cur.partial || (cur.parts > 0 && cur.got < cur.parts),
		Metrics:  cur.metrics,
		Types:    cur.types,
	}
	st.Last = r
	if a.opts.OnReport != nil {
		a.out = append(a.out, *r)
	}
}

func (a *Aggregator) takeReports() []Report {
	if len(a.out) == 0 {
		return nil
	}
	out := a.out
	a.out = nil
	return out
}

func (a *Aggregator) deliver(out []Report) {
	for _, r := range out {
		a.opts.OnReport(r)
	}
}

// Tick closes intervals whose datagrams stopped coming (FlushTimeout for
// sequenced nodes, Interval for plain StatsD) and forgets nodes silent for
// DropAfter. Call it every so often (the Listener does, 10 times a second).
func (a *Aggregator) Tick(now time.Time) {
	a.mu.Lock()
	// In name order, so the reports a tick closes come out in a stable order.
	names := make([]string, 0, len(a.nodes))
	for name := range a.nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		st := a.nodes[name]
		if cur := st.cur; cur != nil {
			limit := a.opts.FlushTimeout
			if cur.parts == 0 {
				limit = a.opts.Interval
			}
			if now.Sub(cur.start) >= limit {
				a.close(now, st)
			}
		}
		if now.Sub(st.LastSeen) >= a.opts.DropAfter {
			delete(a.nodes, name)
		}
	}
	out := a.takeReports()
	a.mu.Unlock()
	a.deliver(out)
}

// Nodes returns the known nodes sorted by name.
func (a *Aggregator) Nodes() []NodeState {
	a.mu.Lock()
	out := make([]NodeState, 0, len(a.nodes))
	for _, st := range a.nodes {
		out = append(out, st.NodeState)
	}
	a.mu.Unlock()
	slices.SortFunc(out, func(x, y NodeState) int { return strings.Compare(x.Node, y.Node) })
	return out
}

// Stats returns what the Aggregator has received so far.
func (a *Aggregator) Stats() AggregatorStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}
