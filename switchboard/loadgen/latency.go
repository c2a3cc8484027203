package loadgen

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Recorder keeps every latency sample of one kind. Runs are bounded, so
// exact percentiles cost little memory (8 bytes a sample: 3 million samples
// is 24 MB) and need no approximation. Safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	samples []time.Duration
	window  []time.Duration // since the last TakeWindow, for the progress line
	// Windowed keeps the samples since the last TakeWindow as well. Set it
	// before the first Record; without it TakeWindow is empty.
	Windowed bool
}

// Record adds one sample. Negative samples (clock steps) count as zero.
func (r *Recorder) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	r.mu.Lock()
	r.samples = append(r.samples, d)
	if r.Windowed {
		r.window = append(r.window, d)
	}
	r.mu.Unlock()
}

// TakeWindow returns the summary of the samples since the previous call.
func (r *Recorder) TakeWindow() Summary {
	r.mu.Lock()
	w := r.window
	r.window = nil
	r.mu.Unlock()
	return summarize(w)
}

// Summary returns the summary of every sample.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	s := slices.Clone(r.samples)
	r.mu.Unlock()
	return summarize(s)
}

// Summary is a latency distribution in milliseconds.
type Summary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// summarize sorts s in place.
func summarize(s []time.Duration) Summary {
	if len(s) == 0 {
		return Summary{}
	}
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{
		Count: int64(len(s)),
		Mean:  ms(sum / time.Duration(len(s))),
		P50:   ms(quantile(s, 0.50)),
		P90:   ms(quantile(s, 0.90)),
		P99:   ms(quantile(s, 0.99)),
		P999:  ms(quantile(s, 0.999)),
		Max:   ms(s[len(s)-1]),
	}
}

// quantile is the nearest-rank quantile of sorted s: the smallest sample
// with at least q of all samples at or below it.
func quantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
