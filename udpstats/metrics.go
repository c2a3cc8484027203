package udpstats

import (
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// cell is one stripe of a counter, alone on its cache line (64 bytes on the
// machines we run on; 128 would only cost memory) so that goroutines on
// different cores do not invalidate each other's line.
type cell struct {
	v atomic.Int64
	_ [56]byte
}

// numStripes is a power of two, a few per core: two goroutines collide on
// one stripe with probability about 1/numStripes.
var numStripes = func() int {
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	return min(max(n, 8), 64)
}()

// stripe picks a stripe from the address of a variable on the calling
// goroutine's stack. It is stable for a goroutine (until its stack moves,
// which only changes the stripe), differs between goroutines, costs about a
// nanosecond and needs neither a lock nor runtime internals. Any stripe is
// correct; the choice only affects contention. It inlines, and x then lives
// in the caller's frame, on the same stack.
func stripe(shift uint8) uint64 {
	var x byte
	p := uint64(uintptr(unsafe.Pointer(&x)))
	// Stacks are at least 2 KiB: drop the bits that are equal within one
	// stack, then take the top bits of a Fibonacci hash of the rest (the
	// best-mixed ones; shift = 64 - log2(stripes)).
	return (p >> 11) * 0x9E3779B97F4A7C15 >> shift
}

// stripeShift is the stripe shift for n stripes, n a power of two.
func stripeShift(n int) uint8 { return uint8(64 - bits.TrailingZeros(uint(n))) }

// Counter counts events; each interval sends the number counted during it.
// Its methods are safe for concurrent use, lock-free and allocation-free.
// A nil *Counter ignores calls, so optional metrics need no nil checks.
type Counter struct {
	name  string
	cells []cell
	shift uint8
	last  int64 // total at the previous flush; owned by the flushing goroutine
}

func newCounter(name string) *Counter {
	return &Counter{name: name, cells: make([]cell, numStripes), shift: stripeShift(numStripes)}
}

// Add adds n (which may be negative) to the counter.
func (c *Counter) Add(n int64) {
	if c == nil {
		return
	}
	c.cells[stripe(c.shift)].v.Add(n)
}

// Inc adds one.
func (c *Counter) Inc() { c.Add(1) }

// Total is the sum of every Add since the counter was made.
func (c *Counter) Total() int64 {
	if c == nil {
		return 0
	}
	var t int64
	for i := range c.cells {
		t += c.cells[i].v.Load()
	}
	return t
}

// delta returns the count since the previous call; flushing goroutine only.
func (c *Counter) delta() int64 {
	t := c.Total()
	d := t - c.last
	c.last = t
	return d
}

// Gauge holds the last value set. Safe for concurrent use; a nil *Gauge
// ignores calls.
type Gauge struct {
	name string
	v    atomic.Int64
}

// Set records v; the last value set before a flush is sent.
func (g *Gauge) Set(v int64) {
	if g == nil {
		return
	}
	g.v.Store(v)
}

// Value is the last value set.
func (g *Gauge) Value() int64 {
	if g == nil {
		return 0
	}
	return g.v.Load()
}

// Histogram layout: values below 2^histBits are their own bucket; above,
// each power of two is cut into 2^(histBits-1) = 16 equal buckets. Durations
// are clamped to 2^histMaxLen ns (about 18 minutes): nothing we time is
// longer, and it keeps a stripe at 9.5 KiB.
const (
	histBits   = 5
	histSub    = 1 << (histBits - 1)
	histMaxLen = 40
	histSize   = 1<<histBits + (histMaxLen-histBits)*histSub
)

// bucketOf maps a duration in nanoseconds to its bucket index.
func bucketOf(v int64) int {
	if v < 1<<histBits {
		return int(max(v, 0))
	}
	if v >= 1<<histMaxLen {
		v = 1<<histMaxLen - 1
	}
	l := bits.Len64(uint64(v))
	m := int(v >> (l - histBits)) // top histBits bits, in [histSub, 2*histSub)
	return (l-histBits)*histSub + m
}

// histStripe is one goroutine-group's share of a Timing.
type histStripe struct {
	count [histSize]atomic.Int64
	sum   [histSize]atomic.Int64
	max   atomic.Int64 // since the last flush, reset by the flush
	_     [56]byte
}

// Timing records durations; each interval sends their count, p50, p90, p99
// and max. Observe is safe for concurrent use, lock-free and
// allocation-free; a nil *Timing ignores calls.
type Timing struct {
	name    string
	stripes []histStripe
	shift   uint8
	// Owned by the flushing goroutine: totals at the previous flush.
	lastCount, lastSum []int64
}

func newTiming(name string) *Timing {
	n := max(numStripes/4, 4) // a stripe is 9.5 KiB: fewer than counters
	return &Timing{
		name:      name,
		stripes:   make([]histStripe, n),
		shift:     stripeShift(n),
		lastCount: make([]int64, histSize),
		lastSum:   make([]int64, histSize),
	}
}

// Observe records one duration. Negative durations count as 0.
func (t *Timing) Observe(d time.Duration) {
	if t == nil {
		return
	}
	v := max(int64(d), 0)
	s := &t.stripes[stripe(t.shift)]
	b := bucketOf(v)
	s.count[b].Add(1)
	s.sum[b].Add(v)
	for {
		m := s.max.Load()
		if v <= m || s.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Since observes time.Since(start): defer t.Since(time.Now()).
func (t *Timing) Since(start time.Time) { t.Observe(time.Since(start)) }

// TimingSummary is one interval of a Timing.
type TimingSummary struct {
	Count              int64
	P50, P90, P99, Max time.Duration
}

// summary returns the interval since the previous call; flushing goroutine
// only. An Observe racing with it may land its max in this interval and its
// bucket in the next; the next interval is then still correct.
func (t *Timing) summary() TimingSummary {
	var counts, sums [histSize]int64
	var s TimingSummary
	var mx int64
	for i := range t.stripes {
		st := &t.stripes[i]
		mx = max(mx, st.max.Swap(0))
		for b := range counts {
			counts[b] += st.count[b].Load()
			sums[b] += st.sum[b].Load()
		}
	}
	for b := range counts {
		c, sm := counts[b], sums[b]
		counts[b], sums[b] = c-t.lastCount[b], sm-t.lastSum[b]
		t.lastCount[b], t.lastSum[b] = c, sm
		s.Count += counts[b]
	}
	if s.Count == 0 {
		return s
	}
	s.Max = time.Duration(mx)
	q := func(p int64) time.Duration {
		rank := (p*s.Count + 99) / 100 // nearest rank, ceil(p% of count)
		var cum int64
		for b := range counts {
			cum += counts[b]
			if cum >= rank && counts[b] > 0 {
				v := time.Duration(sums[b] / counts[b])
				if s.Max > 0 {
					v = min(v, s.Max)
				}
				return v
			}
		}
		return s.Max
	}
	s.P50, s.P90, s.P99 = q(50), q(90), q(99)
	return s
}
