package udpstats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Emitter aggregates a node's metrics and multicasts them once per interval.
// See the package documentation for the wire format and concurrency
// contract. The zero Emitter is not usable; call NewEmitter.
type Emitter struct {
	opts  Options
	log   *slog.Logger
	group *net.UDPAddr // nil when Options were invalid: the emitter stays silent
	node  string       // sanitized

	mu       sync.Mutex // guards the registry below
	counters []*Counter
	gauges   []*Gauge
	funcs    []*gaugeFunc
	timings  []*Timing
	byName   map[string]any

	flushMu   sync.Mutex // serializes Flush, Close and the fields below
	conn      *net.UDPConn
	closed    bool
	lastTry   time.Time // wall clock of the last socket set-up attempt
	setupErr  bool      // the set-up failure was logged
	sendErr   bool      // a send failure was logged
	seq       uint64
	lastFlush time.Time
	units     [][]byte
	out       [][]byte

	sent, sendErrors, dropped atomic.Int64
}

type gaugeFunc struct {
	name     string
	f        func() int64
	panicked bool
}

// NewEmitter never fails: invalid options or a socket that cannot be set up
// are logged once and the emitter keeps counting without sending (retrying
// the socket every Options.RetryEvery). Metric calls always work.
func NewEmitter(opts Options) *Emitter {
	opts = opts.withDefaults()
	e := &Emitter{
		opts:   opts,
		log:    opts.Logger.With("component", "udpstats"),
		node:   sanitize(opts.Node),
		byName: make(map[string]any),
	}
	e.lastFlush = opts.Now()
	if err := opts.Validate(); err != nil {
		e.log.Error("metrics disabled: bad options", "err", err)
		return e
	}
	e.group, _ = groupAddr(opts.Group)
	e.flushMu.Lock()
	e.connect()
	e.flushMu.Unlock()
	return e
}

// connect (re)opens the socket; flushMu held.
func (e *Emitter) connect() {
	e.lastTry = time.Now()
	c, err := openSender(e.opts.Iface, e.opts.TTL)
	if err != nil {
		if !e.setupErr {
			e.setupErr = true
			e.log.Warn("metrics not sent: cannot set up multicast; the node runs on and retries",
				"group", e.opts.Group, "iface", e.opts.Iface, "retry", e.opts.RetryEvery, "err", err)
		}
		return
	}
	if e.setupErr {
		e.log.Info("metrics multicast set up after earlier failure", "group", e.opts.Group, "iface", e.opts.Iface)
	}
	e.setupErr = false
	e.conn = c
}

func (e *Emitter) register(name string, mk func(string) any) any {
	name = sanitize(name)
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.byName[name]; ok {
		return m
	}
	m := mk(name)
	e.byName[name] = m
	return m
}

// Counter returns the counter called name (e.g. "sms.in"), making it on
// first use; the same name returns the same *Counter. It takes a lock: keep
// the handle. A name already used by another kind of metric is a bug in the
// caller: it is logged and the handle returned works but is never sent.
func (e *Emitter) Counter(name string) *Counter {
	m := e.register(name, func(n string) any {
		c := newCounter(n)
		e.counters = append(e.counters, c)
		return c
	})
	if c, ok := m.(*Counter); ok {
		return c
	}
	e.kindClash(name)
	return newCounter(name)
}

func (e *Emitter) kindClash(name string) {
	e.log.Error("metric name already used by another kind of metric; this one is not sent", "metric", name)
}

// Gauge returns the gauge called name, making it on first use.
func (e *Emitter) Gauge(name string) *Gauge {
	m := e.register(name, func(n string) any {
		g := &Gauge{name: n}
		e.gauges = append(e.gauges, g)
		return g
	})
	if g, ok := m.(*Gauge); ok {
		return g
	}
	e.kindClash(name)
	return &Gauge{name: name}
}

// GaugeFunc sends f() as gauge name at every flush (goroutines, heap in use,
// agents available...). f runs on the flushing goroutine: it must be quick
// and safe to call concurrently with the node. If f panics the gauge is
// logged once and skipped from then on. Registering a name again replaces f.
func (e *Emitter) GaugeFunc(name string, f func() int64) {
	g, ok := e.register(name, func(n string) any {
		g := &gaugeFunc{name: n}
		e.funcs = append(e.funcs, g)
		return g
	}).(*gaugeFunc)
	if !ok {
		e.kindClash(name)
		return
	}
	e.mu.Lock()
	g.f, g.panicked = f, false
	e.mu.Unlock()
}

// Timing returns the timing called name, making it on first use.
func (e *Emitter) Timing(name string) *Timing {
	m := e.register(name, func(n string) any {
		t := newTiming(n)
		e.timings = append(e.timings, t)
		return t
	})
	if t, ok := m.(*Timing); ok {
		return t
	}
	e.kindClash(name)
	return newTiming(name)
}

// Run flushes once per Options.Interval (or per value on Options.Tick) until
// ctx is done, then flushes what was counted since the last interval and
// returns. Run one Run per Emitter.
func (e *Emitter) Run(ctx context.Context) {
	tick := e.opts.Tick
	if tick == nil {
		t := time.NewTicker(e.opts.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			_ = e.Flush()
			return
		case _, ok := <-tick:
			if !ok {
				return
			}
			_ = e.Flush() // failures are counted in Stats and logged once
		}
	}
}

// ErrNotSending is returned by Flush when there is no socket to send on.
var ErrNotSending = errors.New("udpstats: not sending (bad options, no socket, or closed)")

// Flush ends the current interval now: it reads every metric, packs the
// lines into datagrams and sends them. Run calls it; tests call it directly
// with an injected clock. Values are consumed even when sending fails, so
// one interval is never counted twice. The error is the first send error.
func (e *Emitter) Flush() error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	now := e.opts.Now()
	units := e.collect(now.Sub(e.lastFlush))
	e.lastFlush = now
	if e.closed || e.group == nil {
		return ErrNotSending
	}
	if e.conn == nil && time.Since(e.lastTry) >= e.opts.RetryEvery {
		e.connect()
	}
	dgrams := e.pack(units)
	if e.conn == nil {
		e.seq += uint64(len(dgrams)) // what a listener would see as lost
		e.sendErrors.Add(int64(len(dgrams)))
		return ErrNotSending
	}
	var first error
	deadline := time.Now().Add(min(e.opts.Interval/4, 100*time.Millisecond))
	_ = e.conn.SetWriteDeadline(deadline)
	for _, d := range dgrams {
		if _, err := e.conn.WriteToUDP(d, e.group); err != nil {
			e.sendErrors.Add(1)
			if first == nil {
				first = fmt.Errorf("udpstats: send to %s: %w", e.group, err)
			}
			continue
		}
		e.sent.Add(1)
	}
	if first != nil && !e.sendErr {
		e.sendErr = true
		e.log.Warn("metrics send failed; further failures are only counted", "err", first)
	}
	return first
}

// Close stops sending and releases the socket; metric calls keep working.
// It does not stop Run: cancel Run's context for that.
func (e *Emitter) Close() error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	e.closed = true
	if e.conn == nil {
		return nil
	}
	err := e.conn.Close()
	e.conn = nil
	if err != nil {
		return fmt.Errorf("udpstats: close: %w", err)
	}
	return nil
}

// EmitterStats are the emitter's own counters.
type EmitterStats struct {
	Sent       int64 // datagrams sent
	SendErrors int64 // datagrams that could not be sent (their seq is skipped)
	Dropped    int64 // lines too long for a datagram (never with sane names)
}

// Stats returns the emitter's own counters.
func (e *Emitter) Stats() EmitterStats {
	return EmitterStats{Sent: e.sent.Load(), SendErrors: e.sendErrors.Load(), Dropped: e.dropped.Load()}
}

// collect reads every metric into e.units (one entry per line, or two lines
// for a negative gauge, which must stay in one datagram); flushMu held.
func (e *Emitter) collect(interval time.Duration) [][]byte {
	e.mu.Lock()
	counters, gauges, funcs, timings := e.counters, e.gauges, e.funcs, e.timings
	e.mu.Unlock()

	units := e.units[:0]
	line := func(name, suffix string, value func(b []byte) []byte) {
		b := make([]byte, 0, len(e.opts.Prefix)+len(name)+len(suffix)+len(e.node)+32)
		b = append(b, e.opts.Prefix...)
		b = append(b, name...)
		b = append(b, ':')
		b = value(b)
		b = append(b, '|')
		b = append(b, suffix...)
		b = append(b, "|#node:"...)
		b = append(b, e.node...)
		units = append(units, b)
	}
	intLine := func(name, typ string, v int64) {
		line(name, typ, func(b []byte) []byte { return strconv.AppendInt(b, v, 10) })
	}
	msLine := func(name string, d time.Duration) {
		line(name, "ms", func(b []byte) []byte {
			return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', -1, 64)
		})
	}
	gauge := func(name string, v int64) {
		if v < 0 { // a leading '-' alone would mean "decrease by"
			intLine(name, "g", 0)
			n := len(units) - 1
			intLine(name, "g", v)
			units[n] = append(append(units[n], '\n'), units[n+1]...)
			units = units[:n+1]
			return
		}
		intLine(name, "g", v)
	}

	line("interval_ms", "g", func(b []byte) []byte {
		return strconv.AppendFloat(b, float64(interval.Microseconds())/1000, 'f', -1, 64)
	})
	for _, c := range counters {
		intLine(c.name, "c", c.delta())
	}
	for _, g := range gauges {
		gauge(g.name, g.Value())
	}
	for _, g := range funcs {
		e.mu.Lock()
		f, skip := g.f, g.panicked
		e.mu.Unlock()
		if skip || f == nil {
			continue
		}
		if v, ok := e.callGauge(g, f); ok {
			gauge(g.name, v)
		}
	}
	for _, t := range timings {
		s := t.summary()
		intLine(t.name+".count", "c", s.Count)
		if s.Count > 0 {
			msLine(t.name+".p50", s.P50)
			msLine(t.name+".p90", s.P90)
			msLine(t.name+".p99", s.P99)
			msLine(t.name+".max", s.Max)
		}
	}
	e.units = units
	return units
}

func (e *Emitter) callGauge(g *gaugeFunc, f func() int64) (v int64, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			e.mu.Lock()
			g.panicked = true
			e.mu.Unlock()
			e.log.Error("gauge function panicked; gauge disabled", "gauge", g.name, "panic", r)
			ok = false
		}
	}()
	return f(), true
}

// pack puts units into datagrams of at most MaxDatagram bytes, each starting
// with its sequence line, never splitting a unit; flushMu held. It advances
// e.seq by the number of datagrams.
func (e *Emitter) pack(units [][]byte) [][]byte {
	// The sequence line holds part:i/k and k is known only at the end: pack
	// assuming k has kd digits, and again with more if it turned out longer.
	var bounds []int // end index (exclusive) of each datagram's units
	for kd := 1; ; kd++ {
		bounds = bounds[:0]
		open, size, dropped := false, 0, 0
		for j, u := range units {
			if u == nil { // dropped in an earlier pass
				continue
			}
			if open && size+1+len(u) <= MaxDatagram {
				size += 1 + len(u)
				continue
			}
			n := len(bounds) // index of the datagram this unit would start
			if open {
				n++
			}
			hdr := e.seqLineLen(e.seq+uint64(n)+1, n+1, kd)
			if hdr+1+len(u) > MaxDatagram { // cannot fit even alone
				units[j] = nil
				dropped++
				continue
			}
			if open {
				bounds = append(bounds, j)
			}
			open, size = true, hdr+1+len(u)
		}
		if open || len(bounds) == 0 {
			bounds = append(bounds, len(units))
		}
		if digits(uint64(len(bounds))) <= kd {
			if dropped > 0 {
				e.dropped.Add(int64(dropped))
			}
			break
		}
	}

	out := e.out[:0]
	k := len(bounds)
	start := 0
	for i, end := range bounds {
		e.seq++
		b := make([]byte, 0, MaxDatagram)
		b = append(b, e.opts.Prefix...)
		b = append(b, "seq:"...)
		b = strconv.AppendUint(b, e.seq, 10)
		b = append(b, "|g|#node:"...)
		b = append(b, e.node...)
		b = append(b, ",part:"...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(k), 10)
		for _, u := range units[start:end] {
			if u != nil {
				b = append(append(b, '\n'), u...)
			}
		}
		out = append(out, b)
		start = end
	}
	e.out = out
	return out
}

// seqLineLen is the length of the sequence line of datagram part of a flush
// whose datagram count has kd digits.
func (e *Emitter) seqLineLen(seq uint64, part, kd int) int {
	return len(e.opts.Prefix) + len("seq:") + digits(seq) + len("|g|#node:") + len(e.node) +
		len(",part:") + digits(uint64(part)) + 1 + kd
}

func digits(n uint64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
