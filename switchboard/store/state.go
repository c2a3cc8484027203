package store

// This file holds the export and import of a store's applied state, for
// log snapshots (package switchboard, snapshot.go).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// stateParts are the key prefixes a node's applied state consists of:
// messages and their indexes, statuses, conversations' routing state,
// contacts, canned replies and opt-outs. Not in it: the outbox (what this
// node still has to send is its own), the journal, the local log, the
// checkpoint (a snapshot carries its own), navigation (its own stream),
// and the search index (rebuilt from the messages as they are imported).
var stateParts = []string{pMsg, pStatus, pSid, pRef, pID, pPID, pConv, pContact, pCanned, pOptOut}

// StateKey reports whether key belongs to the applied state that
// ExportState writes and ImportState takes.
func StateKey(key []byte) bool {
	for _, p := range stateParts {
		if strings.HasPrefix(string(key), p) {
			return true
		}
	}
	return false
}

// ExportState calls fn with every key and value of the store's applied
// state (see StateKey) and, last, with the global sequence number, from
// one consistent view. fn's slices are valid only during the call.
func (s *Store) ExportState(fn func(key, value []byte) error) (gseq uint64, err error) {
	err = s.snapshot(func(snap *leveldb.Snapshot) error {
		for _, p := range stateParts {
			it := snap.NewIterator(util.BytesPrefix([]byte(p)), nil)
			for it.Next() {
				if err := fn(it.Key(), it.Value()); err != nil {
					it.Release()
					return err
				}
			}
			it.Release()
			if err := it.Error(); err != nil {
				return err
			}
		}
		v, err := snap.Get([]byte(keyGSeq), nil)
		if err == nil && len(v) == 8 {
			gseq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: export state: %w", err)
	}
	return gseq, nil
}

// KV is one key and value of ExportState.
type KV struct{ Key, Value []byte }

// importBatchBytes bounds the bytes of one write of ImportState: below
// LevelDB's write buffer (4 MiB), above which goleveldb writes a batch as
// a transaction of its own tables, synchronously on the writer (measured
// slower), instead of to the memtable, flushed in the background.
const importBatchBytes = 1 << 20

// ImportState writes kvs (ExportState's, from another node's store) over
// this store's, with their search index, in batches, and raises the global
// sequence number to at least gseq. Importing the same state again changes
// nothing. It refuses a key outside the applied state, before writing
// anything. Its writes are not synced unless ctx asks for it: a crash
// leaves part of them, and the import is done again (see snapshot.go).
//
// The keys are written in key order: LevelDB then flushes tables that
// overlap neither each other nor what is stored, and moves them down its
// levels without merging them, where keys in the order they come (messages
// by conversation, each with index keys spread over the whole index) made
// it rewrite every table several times: most of the import's time. So the
// index keys are built (on every core, while the state is written) and
// sorted first; the memtable is flushed before the state, between its
// parts, and before the index, so that no table spans two of them.
func (s *Store) ImportState(ctx context.Context, kvs []KV, gseq uint64) error {
	for _, kv := range kvs {
		if !StateKey(kv.Key) {
			return fmt.Errorf("store: import state: %w", invalid("key %q is not part of the applied state", kv.Key))
		}
	}
	built := make(chan importIndex, 1)
	go func() { built <- s.buildIndex(kvs) }()
	err := s.importSeq(ctx, gseq)
	if err == nil {
		err = s.importState(ctx, sortedState(kvs))
	}
	index := <-built // also on error: the goroutine is done
	if err == nil {
		err = index.err
	}
	if err == nil {
		err = s.importIndex(ctx, index.runs)
	}
	if err != nil {
		return fmt.Errorf("store: import state: %w", err)
	}
	return nil
}

// importSeq raises the global sequence number, in a write of its own
// (gaps are allowed, reuse is not), and flushes the memtable: what was
// written before the import then does not share a table with it.
func (s *Store) importSeq(ctx context.Context, gseq uint64) error {
	res := s.do(ctx, func(t *txn) result {
		// Per-conversation sequence numbers come from the imported messages
		// now: forget the cached ones.
		clear(t.s.seqs)
		clear(t.seqs)
		t.gseq = max(t.gseq, gseq)
		return result{}
	})
	if res.err != nil {
		return res.err
	}
	return s.flushMem()
}

// importState writes the state's keys, sorted, flushing the memtable after
// each part (stateParts): the index, or anything else, may sort between two.
func (s *Store) importState(ctx context.Context, kvs []KV) error {
	var w importWriter
	for i, kv := range kvs {
		w.put(kv.Key, kv.Value, true)
		last := i == len(kvs)-1
		if last || w.size >= importBatchBytes || statePart(kvs[i+1].Key) != statePart(kv.Key) {
			if err := w.write(ctx, s); err != nil {
				return err
			}
		}
		if last || statePart(kvs[i+1].Key) != statePart(kv.Key) {
			if err := s.flushMem(); err != nil {
				return err
			}
		}
	}
	return nil
}

// importIndex writes the index keys, merging the sorted runs.
func (s *Store) importIndex(ctx context.Context, runs []keyRun) error {
	var w importWriter
	for m := (merge{runs: runs}); !m.done(); {
		w.put(m.next(), nil, false)
		if m.done() || w.size >= importBatchBytes {
			if err := w.write(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// importWriter builds one write of the import outside the writer, which
// then only takes it (txn.put would index the messages again).
type importWriter struct {
	b     *leveldb.Batch
	state []KV // keys a later request of the same write may read
	size  int
}

func (w *importWriter) put(key, value []byte, state bool) {
	if w.b == nil {
		w.b = new(leveldb.Batch)
	}
	if value == nil {
		value = []byte{}
	}
	w.b.Put(key, value)
	if state {
		w.state = append(w.state, KV{Key: key, Value: value})
	}
	w.size += len(key) + len(value) + 8
}

func (w *importWriter) write(ctx context.Context, s *Store) error {
	b, state := w.b, w.state
	*w = importWriter{}
	if b == nil {
		return nil
	}
	res := s.do(ctx, func(t *txn) result {
		if t.batch.Len() == 0 {
			t.batch = *b
		} else if err := b.Replay(&t.batch); err != nil {
			return result{err: err}
		}
		for _, kv := range state {
			t.over[string(kv.Key)] = kv.Value
		}
		clear(t.s.seqs) // as in importSeq: a request may have read one since
		clear(t.seqs)
		return result{}
	})
	return res.err
}

// flushMem writes LevelDB's memtable to a table and waits for it: opening
// a transaction does that first.
func (s *Store) flushMem() error {
	return s.db.view(func(db *leveldb.DB) error {
		tr, err := db.OpenTransaction()
		if err != nil {
			return err
		}
		tr.Discard()
		return nil
	})
}

// statePart returns the part of the state (stateParts) key is in.
func statePart(key []byte) string {
	for _, p := range stateParts {
		if strings.HasPrefix(string(key), p) {
			return p
		}
	}
	return ""
}

// sortedState returns kvs sorted by key. ExportState's come in one sorted
// run per part: these are put in order without a sort.
func sortedState(kvs []KV) []KV {
	less := func(a, b []byte) bool { return bytes.Compare(a, b) < 0 }
	var runs [][]KV
	for start := 0; start < len(kvs); {
		end := start + 1
		for end < len(kvs) && less(kvs[end-1].Key, kvs[end].Key) {
			end++
		}
		runs = append(runs, kvs[start:end])
		start = end
	}
	slices.SortFunc(runs, func(a, b []KV) int { return bytes.Compare(a[0].Key, b[0].Key) })
	sorted := make([]KV, 0, len(kvs))
	for i, run := range runs {
		if i > 0 && !less(runs[i-1][len(runs[i-1])-1].Key, run[0].Key) {
			sorted = append(sorted[:0], kvs...) // runs overlap
			slices.SortStableFunc(sorted, func(a, b KV) int { return bytes.Compare(a.Key, b.Key) })
			return sorted
		}
		sorted = append(sorted, run...)
	}
	return sorted
}

// importIndex is what buildIndex built: the index keys in sorted runs.
type importIndex struct {
	runs []keyRun
	err  error
}

// buildIndex returns the index keys of the messages among kvs, in one
// sorted run per core, each built on its own goroutine.
func (s *Store) buildIndex(kvs []KV) importIndex {
	if s.opts.noSearchIndex {
		return importIndex{}
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(kvs)/1024))
	runs := make([]keyRun, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[w], errs[w] = indexRun(kvs, w, workers)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return importIndex{err: err}
	}
	return importIndex{runs: slices.DeleteFunc(runs, func(r keyRun) bool { return len(r.refs) == 0 })}
}

// indexRun returns the index keys of the messages among every nth of kvs
// from the wth, sorted.
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
			if cap(run.refs) < 2048 { // room for all, as the first messages go
				run.refs = slices.Grow(run.refs, len(run.refs)*msgs/done*9/8)
				run.data = slices.Grow(run.data, len(run.data)*msgs/done*9/8)
			}
		}
	}
	slices.SortFunc(run.refs, func(a, b keyRef) int { return bytes.Compare(run.key(a), run.key(b)) })
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
