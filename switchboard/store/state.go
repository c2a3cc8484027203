package store

// This file holds the export and import of a store's applied state, for
// log snapshots (package switchboard, snapshot.go).

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

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
// index keys are built and sorted on every core while the state is written
// in order; then the index, merged in order. The memtable is flushed
// before the state, where the index sorts among the state's keys and
// before the index, so that no table spans two of them.
func (s *Store) ImportState(ctx context.Context, kvs []KV, gseq uint64) error {
	for _, kv := range kvs {
		if !StateKey(kv.Key) {
			return fmt.Errorf("store: import state: %w", invalid("key %q is not part of the applied state", kv.Key))
		}
	}
	ix := s.buildIndex(kvs)
	defer ix.wait()
	err := s.importSeq(ctx, gseq)
	if err == nil {
		err = s.importState(ctx, sortedState(kvs), s.anIndexKey(kvs))
	}
	if err == nil {
		err = s.importIndex(ctx, ix)
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

// importState writes the state's keys, sorted, and flushes the memtable
// where the index keys (at) sort among them: no table of the state then
// spans the index, which comes after.
func (s *Store) importState(ctx context.Context, kvs []KV, at []byte) error {
	var w importWriter
	for i, kv := range kvs {
		w.put(kv.Key, kv.Value, true)
		gap := i+1 < len(kvs) && at != nil && bytes.Compare(kv.Key, at) < 0 && bytes.Compare(at, kvs[i+1].Key) < 0
		if i+1 == len(kvs) || gap || w.size >= importBatchBytes {
			if err := w.write(ctx, s); err != nil {
				return err
			}
		}
		if i+1 == len(kvs) || gap {
			if err := s.flushMem(); err != nil {
				return err
			}
		}
	}
	return nil
}

// importWriter builds one write of the import outside the writer, which
// then only takes it (txn.put would index the messages again).
type importWriter struct {
	b     *leveldb.Batch // reused once written
	state []KV           // keys a later request of the same write may read
	size  int
}

func (w *importWriter) put(key, value []byte, state bool) {
	if w.b == nil {
		w.b = leveldb.MakeBatch(importBatchBytes + 64<<10)
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
	if b == nil || b.Len() == 0 {
		return nil
	}
	res := s.do(ctx, func(t *txn) result {
		if t.batch.Len() == 0 {
			t.batch, t.borrowed = *b, true
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
	if res.err != nil {
		return res.err // the writer may still hold b: not reused
	}
	b.Reset() // the writer answered: done with it
	w.state, w.size = state[:0], 0
	return nil
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

// anIndexKey returns the first index key of the first message of kvs, or
// nil: where the index sorts among the state's keys.
func (s *Store) anIndexKey(kvs []KV) []byte {
	if s.opts.noSearchIndex {
		return nil
	}
	var b leveldb.Batch
	for _, kv := range kvs {
		if indexRecordTo(&b, kv.Key, kv.Value) == nil && b.Len() > 0 {
			var run keyRun
			b.Replay(&run)
			return run.key(run.refs[0])
		}
	}
	return nil
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
