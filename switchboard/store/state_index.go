package store

// This file holds the building of the search index of an imported state
// (ImportState, state.go): the index keys of its messages, in key order,
// built on every core while the state is written, and handed to the
// writer a key range at a time.

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/syndtr/goleveldb/leveldb"
)

// indexBuckets is how many key ranges the index of an import is cut into:
// the writer writes the first while the others are sorted.
const indexBuckets = 32

// importIndex is the index of an import being built: its keys in buckets
// of consecutive key ranges, each sorted in turn.
type importIndex struct {
	built    chan struct{} // closed once buckets (or err) is set
	err      error
	buckets  []indexBucket
	finished sync.WaitGroup
}

// indexBucket is one key range: one sorted run per builder.
type indexBucket struct {
	runs  []keyRun
	left  atomic.Int32  // runs still to sort
	ready chan struct{} // closed once every run is sorted
}

// buildIndex starts building the index keys of the messages among kvs.
func (s *Store) buildIndex(kvs []KV) *importIndex {
	ix := &importIndex{built: make(chan struct{})}
	if s.opts.noSearchIndex {
		close(ix.built)
		return ix
	}
	ix.finished.Add(1)
	go func() {
		defer ix.finished.Done()
		ix.build(kvs)
	}()
	return ix
}

// wait returns once every goroutine of the build has ended.
func (ix *importIndex) wait() { ix.finished.Wait() }

// build makes one run of keys per core from a share of the messages, cuts
// each into the buckets' ranges, and sorts the pieces a bucket after the
// other, on every core.
func (ix *importIndex) build(kvs []KV) {
	workers := max(1, min(runtime.GOMAXPROCS(0), len(kvs)/1024))
	runs := make([]keyRun, workers)
	errs := make([]error, workers)
	parallel(workers, func(w int) { runs[w], errs[w] = indexRun(kvs, w, workers) })
	if ix.err = errors.Join(errs...); ix.err != nil {
		close(ix.built)
		return
	}
	splits := splitKeys(runs)
	ix.buckets = make([]indexBucket, len(splits)+1)
	for b := range ix.buckets {
		ix.buckets[b] = indexBucket{runs: make([]keyRun, workers), ready: make(chan struct{})}
		ix.buckets[b].left.Store(int32(workers))
	}
	parallel(workers, func(w int) {
		run := runs[w]
		for _, ref := range run.refs {
			key := run.key(ref)
			b := sort.Search(len(splits), func(i int) bool { return bytes.Compare(key, splits[i]) < 0 })
			part := &ix.buckets[b].runs[w]
			part.data = run.data // shared: the pieces only refer to it
			part.refs = append(part.refs, ref)
		}
	})
	close(ix.built)
	var next atomic.Int64 // the next piece to sort, bucket by bucket
	parallel(workers, func(int) {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(ix.buckets)*workers {
				return
			}
			b := &ix.buckets[i/workers]
			run := &b.runs[i%workers]
			slices.SortFunc(run.refs, func(x, y keyRef) int { return bytes.Compare(run.key(x), run.key(y)) })
			if b.left.Add(-1) == 0 {
				close(b.ready)
			}
		}
	})
}

// parallel runs fn(0..n-1) on n goroutines and waits for them.
func parallel(n int, fn func(w int)) {
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() { fn(w) })
	}
	wg.Wait()
}

// splitKeys returns the keys that cut runs into about indexBuckets ranges
// of as many keys, from a sorted sample.
func splitKeys(runs []keyRun) [][]byte {
	total := 0
	for _, r := range runs {
		total += len(r.refs)
	}
	step := max(1, total/(indexBuckets*64))
	var sample [][]byte
	for _, r := range runs {
		for i := 0; i < len(r.refs); i += step {
			sample = append(sample, r.key(r.refs[i]))
		}
	}
	slices.SortFunc(sample, bytes.Compare)
	var splits [][]byte
	for b := 1; b < indexBuckets && len(sample) > 0; b++ {
		k := sample[b*len(sample)/indexBuckets]
		if len(splits) == 0 || !bytes.Equal(splits[len(splits)-1], k) {
			splits = append(splits, k)
		}
	}
	return splits
}

// importIndex writes the index keys, a bucket at a time as each is sorted.
func (s *Store) importIndex(ctx context.Context, ix *importIndex) error {
	<-ix.built
	if ix.err != nil {
		return ix.err
	}
	var w importWriter
	for b := range ix.buckets {
		bucket := &ix.buckets[b]
		<-bucket.ready
		m := merge{runs: slices.DeleteFunc(bucket.runs, func(r keyRun) bool { return len(r.refs) == 0 })}
		for !m.done() {
			w.put(m.next(), nil, false)
			if w.size >= importBatchBytes {
				if err := w.write(ctx, s); err != nil {
					return err
				}
			}
		}
		bucket.runs = nil // done with: let the collector have them
	}
	return w.write(ctx, s)
}

// indexRun returns the index keys of the messages among every nth of kvs
// from the wth, unsorted.
func indexRun(kvs []KV, w, n int) (keyRun, error) {
	var b leveldb.Batch
	var run keyRun
	msgs, done := 0, 0
	for i := w; i < len(kvs); i += n {
		if isMsgKey(kvs[i].Key) {
			msgs++
		}
	}
	for i := w; i < len(kvs); i += n {
		if err := indexRecordTo(&b, kvs[i].Key, kvs[i].Value); err != nil {
			return keyRun{}, err
		}
		if isMsgKey(kvs[i].Key) {
			done++
		}
		// A batch grows by less and less as it holds more: keep it small.
		if b.Len() >= 1024 || i+n >= len(kvs) {
			if err := b.Replay(&run); err != nil {
				return keyRun{}, err
			}
			b.Reset()
			if cap(run.refs) < 2048 && done > 0 { // room for all, from the first messages
				run.refs = slices.Grow(run.refs, len(run.refs)*msgs/done*9/8)
				run.data = slices.Grow(run.data, len(run.data)*msgs/done*9/8)
			}
		}
	}
	return run, nil
}

// keyRun holds keys in one buffer, referred to by offset: no pointers for
// the garbage collector to follow, for millions of keys.
type keyRun struct {
	data []byte
	refs []keyRef
}

type keyRef struct{ off, n int }

func (r *keyRun) key(k keyRef) []byte { return r.data[k.off : k.off+k.n : k.off+k.n] }

func (r *keyRun) Put(key, value []byte) {
	r.refs = append(r.refs, keyRef{len(r.data), len(key)})
	r.data = append(r.data, key...)
}
func (r *keyRun) Delete(key []byte) {}

// merge walks sorted runs together, in key order.
type merge struct{ runs []keyRun }

func (m *merge) done() bool { return len(m.runs) == 0 }

// next returns the least key of the runs' heads and moves past it.
func (m *merge) next() []byte {
	least := 0
	key := m.runs[0].key(m.runs[0].refs[0])
	for i := 1; i < len(m.runs); i++ {
		if k := m.runs[i].key(m.runs[i].refs[0]); bytes.Compare(k, key) < 0 {
			least, key = i, k
		}
	}
	if r := &m.runs[least]; len(r.refs) == 1 {
		m.runs = slices.Delete(m.runs, least, least+1)
	} else {
		r.refs = r.refs[1:]
	}
	return key
}
