package store

// This file holds the export and import of a store's applied state, for
// log snapshots (package switchboard, snapshot.go).

import (
	"context"
	"encoding/binary"
	"fmt"
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

// importBatch bounds the keys ImportState writes in one write.
const importBatch = 2048

// ImportState writes kvs (ExportState's, from another node's store) over
// this store's, in batches, and raises the global sequence number to at
// least gseq. Importing the same state again changes nothing. It refuses
// a key outside the applied state, before writing anything.
func (s *Store) ImportState(ctx context.Context, kvs []KV, gseq uint64) error {
	for _, kv := range kvs {
		if !StateKey(kv.Key) {
			return fmt.Errorf("store: import state: %w", invalid("key %q is not part of the applied state", kv.Key))
		}
	}
	for start := 0; start == 0 || start < len(kvs); start += importBatch {
		part := kvs[start:min(start+importBatch, len(kvs))] // one write even for none: gseq
		res := s.do(ctx, func(t *txn) result {
			for _, kv := range part {
				t.put(kv.Key, kv.Value)
			}
			// Per-conversation sequence numbers come from the imported
			// messages now: forget the cached ones.
			clear(t.s.seqs)
			clear(t.seqs)
			t.gseq = max(t.gseq, gseq)
			return result{}
		})
		if res.err != nil {
			return fmt.Errorf("store: import state: %w", res.err)
		}
	}
	return nil
}
