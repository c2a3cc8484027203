package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// A search of one conversation (GET /search with a phone, an agent's search
// frame for each of its conversations) is answered one of two ways,
// whichever reads less:
//
//   - scan: read the conversation's own records (its m/ keys are
//     contiguous), keep those that hold every word, sort them. It reads the
//     whole conversation (a Received time may be given by the caller, so
//     seq order is not result order), so its cost is the conversation's
//     length: tens of records for most.
//   - lists: walk the query's fw/ lists as Search does and keep this
//     phone's keys. Its cost is up to the rarest list's length, which for a
//     common word is a fair part of every message stored.
//
// The choice compares the conversation's length with the rarest list's
// size on disk: one record scanned (read, JSON-decoded, split into words)
// costs about as much as scanKeyBytes bytes of a list walked
// (BenchmarkSearchOneConversation). Conversations of up to convScanMin
// messages are always scanned, whatever the lists' estimates say (a list
// still in the memtable is estimated at 0 bytes).
const (
	convScanMin  = 1000
	scanKeyBytes = 256
)

// convMode forces one way (Options.convMode: tests and benchmarks compare
// both).
type convMode int

const (
	convAuto convMode = iota
	convScan
	convLists
)

// searchConv finds up to n matches in one conversation after from (nil:
// from the newest), as positions in the global order.
func searchConv(db *leveldb.DB, snap *leveldb.Snapshot, mode convMode, phone string, words []string, from pos, n int) ([]pos, error) {
	if _, err := protocol.NormalizeAddress(phone); err != nil {
		return nil, invalid("phone %q: %v", phone, err)
	}
	if mode == convAuto {
		var err error
		if mode, err = chooseConvMode(db, snap, phone, words); err != nil {
			return nil, err
		}
	}
	if mode == convScan {
		return scanConv(snap, phone, words, from, n)
	}
	return listConv(db, snap, phone, words, from, n)
}

// chooseConvMode picks the way that reads less (see above).
func chooseConvMode(db *leveldb.DB, snap *leveldb.Snapshot, phone string, words []string) (convMode, error) {
	it := snap.NewIterator(util.BytesPrefix(convPrefix(phone)), nil)
	var length uint64
	if it.Last() {
		length, _ = seqOfMsgKey(it.Key()) // seqs are 1, 2, 3, … in a conversation
	}
	it.Release()
	if err := it.Error(); err != nil {
		return 0, err
	}
	if length <= convScanMin {
		return convScan, nil
	}
	sizes, err := listSizes(db, wordPrefixes(words))
	if err != nil {
		return 0, err
	}
	if length*scanKeyBytes <= uint64(slices.Min(sizes)) {
		return convScan, nil
	}
	return convLists, nil
}

// scanConv reads every record of the conversation and keeps the first n
// matches after from in the global order.
func scanConv(snap *leveldb.Snapshot, phone string, words []string, from pos, n int) ([]pos, error) {
	it := snap.NewIterator(util.BytesPrefix(convPrefix(phone)), nil)
	defer it.Release()
	var found []pos
	for it.Next() {
		var rec struct { // only what the match and its place need
			Text     string `json:"t"`
			Received int64  `json:"r"`
		}
		if err := json.Unmarshal(it.Value(), &rec); err != nil {
			return nil, fmt.Errorf("corrupt message record %q: %w", it.Key(), err)
		}
		if !holdsAll(Words(rec.Text), words) {
			continue
		}
		seq, err := seqOfMsgKey(it.Key())
		if err != nil {
			return nil, err
		}
		if p := makePos(rec.Received, phone, seq); from == nil || bytes.Compare(p, from) > 0 {
			found = append(found, p)
		}
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	slices.SortFunc(found, func(a, b pos) int { return bytes.Compare(a, b) })
	return found[:min(len(found), n)], nil
}

// holdsAll reports whether have (a message's distinct words) holds every
// one of words.
func holdsAll(have, words []string) bool {
	for _, w := range words {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// listConv walks the words' lists from after from and keeps the first n
// keys of phone.
func listConv(db *leveldb.DB, snap *leveldb.Snapshot, phone string, words []string, from pos, n int) ([]pos, error) {
	prefixes, err := rarestFirst(db, words)
	if err != nil {
		return nil, err
	}
	var start []byte
	if from != nil {
		start = append(slices.Clone(from), 0) // after from, not at it
	}
	var found []pos
	err = intersect(snap, prefixes, start, func(p []byte) bool {
		if string(p[8:len(p)-9]) == phone {
			found = append(found, slices.Clone(p))
		}
		return len(found) < n
	})
	return found, err
}

// dropBatch is how many fc/ keys one background write deletes; every
// compactBatches batches, the range they deleted is compacted.
// (Variables for tests.)
var (
	dropBatch      = 20000
	compactBatches = 25
)

// startDropConvIndex starts deleting the fc/ keys of index version 1, when
// there are any, in the background: in unsynced batches (a batch lost in a
// crash is deleted again at the next open, which looks for fc/ keys left),
// pausing between batches as long as each took, so that the node's own
// writes keep at least half of the disk and of a core; every
// compactBatches batches it compacts the range just deleted, so that its
// space is freed now rather than whenever LevelDB's compactions reach it,
// in pieces short enough (about a second) that Close, which waits for
// this work, is not held up. Searches never read fc/, so nothing waits
// for it. (Left in place, fc/ would keep about a third of the index's disk
// space, 133 MiB a million messages, for good.)
func (s *Store) startDropConvIndex() error {
	var left bool
	if err := s.db.scan([]byte(pConvWord), func(it iterator.Iterator) error { left = it.First(); return nil }); err != nil {
		return fmt.Errorf("look for index version %s keys: %w", searchV1, err)
	}
	if !left {
		return nil
	}
	s.bg.Add(1)
	go s.dropConvIndex()
	return nil
}

func (s *Store) dropConvIndex() {
	defer s.bg.Done()
	start, n := time.Now(), 0
	all := util.BytesPrefix([]byte(pConvWord))
	from := all.Start // the start of the range deleted since the last compaction
	var next []byte   // where the next batch starts; nil: at the first fc/ key
	for i := 1; ; i++ {
		t0 := time.Now()
		var done bool
		var err error
		next, done, err = s.dropConvBatch(next, &n)
		if err != nil {
			s.log.Warn("deleting index version 1 keys stopped; the next open goes on", "deleted", n, "err", err)
			return
		}
		if done || i%compactBatches == 0 {
			to := next
			if done {
				to = all.Limit
			}
			if err := s.db.view(func(db *leveldb.DB) error { return db.CompactRange(util.Range{Start: from, Limit: to}) }); err != nil {
				s.log.Warn("compacting deleted index version 1 keys", "err", err)
			}
			from = to
		}
		if done {
			break
		}
		select {
		case <-s.quit:
			return
		case <-time.After(time.Since(t0)):
		}
	}
	s.log.Info("deleted index version 1 keys (fc/)", "keys", n, "took", time.Since(start).Round(time.Millisecond))
}

// dropConvBatch deletes up to dropBatch fc/ keys from from on.
func (s *Store) dropConvBatch(from []byte, n *int) (next []byte, done bool, err error) {
	r := util.BytesPrefix([]byte(pConvWord))
	if from != nil {
		r.Start = from
	}
	var b leveldb.Batch
	err = s.db.scanRange(r, func(it iterator.Iterator) error {
		for it.Next() {
			if b.Len() == dropBatch {
				next = slices.Clone(it.Key())
				return nil
			}
			b.Delete(it.Key())
		}
		done = true
		return nil
	})
	if err == nil && b.Len() > 0 {
		err = s.db.Write(&b, nil)
	}
	*n += b.Len()
	return next, done, err
}
