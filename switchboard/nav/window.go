package nav

import (
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// window counts views per product over a sliding window of whole buckets:
// at time t it holds the views of the buckets t/res-n+1 ... t/res, n =
// window/res. Adding and advancing are O(1) per view plus O(products of a
// bucket) when a bucket expires. Not safe for concurrent use.
type window struct {
	res     int64 // nanoseconds
	buckets []map[string]int64
	totals  map[string]int64
	cur     int64 // index (unix ns / res) of the newest bucket
	started bool  // cur is set
}

func newWindow(span, res time.Duration) *window {
	n := int(span / res)
	w := &window{res: int64(res), buckets: make([]map[string]int64, n), totals: make(map[string]int64)}
	for i := range w.buckets {
		w.buckets[i] = make(map[string]int64)
	}
	return w
}

// advance expires the buckets that fell out of the window at now. A clock
// that goes backwards keeps the current bucket.
func (w *window) advance(now time.Time) {
	idx := now.UnixNano() / w.res
	if !w.started {
		w.cur, w.started = idx, true
		return
	}
	if idx <= w.cur {
		return
	}
	n := int64(len(w.buckets))
	steps := idx - w.cur
	if steps > n {
		steps = n
	}
	for i := idx - steps + 1; i <= idx; i++ {
		b := w.buckets[i%n]
		for p, c := range b {
			if t := w.totals[p] - c; t > 0 {
				w.totals[p] = t
			} else {
				delete(w.totals, p)
			}
		}
		clear(b)
	}
	w.cur = idx
}

// add counts one view of product that happened at t. A view older than
// the newest bucket goes into its own bucket (events can arrive late
// through the bus), or nowhere if that bucket has left the window.
func (w *window) add(product string, t time.Time) {
	w.advance(t)
	idx := t.UnixNano() / w.res
	n := int64(len(w.buckets))
	if idx > w.cur || idx <= w.cur-n {
		return
	}
	w.buckets[idx%n][product]++
	w.totals[product]++
}

// ranking returns the n most viewed products, count descending then id
// ascending (so equal counts rank the same on every node).
func (w *window) ranking(n int) []protocol.TopEntry {
	out := make([]protocol.TopEntry, 0, len(w.totals))
	for p, c := range w.totals {
		out = append(out, protocol.TopEntry{Product: p, Count: c})
	}
	sortRanking(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func sortRanking(es []protocol.TopEntry) {
	slices.SortFunc(es, func(a, b protocol.TopEntry) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Product, b.Product)
	})
}

// Partial is one node's ranking, the body of stats.top. Nodes publish
// theirs when it changes (at most once per resolution tick) and at least
// every few ticks as a heartbeat; a node that stops publishes Leaving.
type Partial struct {
	Node    string              `json:"node"`
	At      int64               `json:"at"`     // ms since the epoch, the sender's clock (informational)
	Window  string              `json:"window"` // e.g. "5m0s"
	Top     []protocol.TopEntry `json:"top"`
	Leaving bool                `json:"leaving,omitempty"`
}

// Merge adds up partial rankings into the global top n (count descending,
// then product id). It is exact when every partial lists all the products
// of its node's window (Options.PartialSize); titles are left empty.
func Merge(partials []Partial, n int) []protocol.TopEntry {
	sum := make(map[string]int64)
	for _, p := range partials {
		for _, e := range p.Top {
			if e.Count > 0 {
				sum[e.Product] += e.Count
			}
		}
	}
	out := make([]protocol.TopEntry, 0, len(sum))
	for p, c := range sum {
		out = append(out, protocol.TopEntry{Product: p, Count: c})
	}
	sortRanking(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}
