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
	listed, _ := splitQuery(words)
	sizes, err := listSizes(db, wordPrefixes(listed))
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

// listConv walks the lists of the words that have one from after from and
// keeps the first n keys of phone whose messages hold the stop words too.
func listConv(db *leveldb.DB, snap *leveldb.Snapshot, phone string, words []string, from pos, n int) ([]pos, error) {
	var start []byte
	if from != nil {
		start = append(slices.Clone(from), 0) // after from, not at it
	}
	return matches(db, snap, words, start, func(p pos) bool { return p.phone() == phone }, n)
}

// dropBatch is how many unused index keys one background write deletes;
// every compactBatches batches, the range they deleted is compacted.
// (Variables for tests.)
var (
	dropBatch      = 20000
	compactBatches = 25
)

// unusedIndex is what earlier index versions wrote that version 3 does not
// read: the per-conversation lists fc/ (version 1) and the stop words'
// lists (versions 1 and 2).
func unusedIndex() []*util.Range {
	r := []*util.Range{util.BytesPrefix([]byte(pConvWord))}
	for _, w := range StopWords {
		r = append(r, util.BytesPrefix(wordPrefix(w)))
	}
	return r
}

// startDropUnused starts deleting the keys of unusedIndex, when there are
// any, in the background: in unsynced batches (a batch lost in a crash is
// deleted again at the next open, which looks for such keys again),
// pausing between batches as long as each took, so that the node's own
// writes keep at least half of the disk and of a core; every
// compactBatches batches it compacts the range just deleted, so that its
// space is freed now rather than whenever LevelDB's compactions reach it,
// in pieces short enough (about a second) that Close, which waits for
// this work, is not held up. Searches never read these keys, so nothing
// waits for it. (Left in place, fc/ would keep about a third of the
// index's disk space, 133 MiB a million messages, for good; the stop
// words' lists about two fifths of the rest.)
func (s *Store) startDropUnused() error {
	var left []*util.Range
	for _, r := range unusedIndex() {
		var any bool
		if err := s.db.scanRange(r, func(it iterator.Iterator) error { any = it.First(); return nil }); err != nil {
			return fmt.Errorf("look for unused search index keys: %w", err)
		}
		if any {
			left = append(left, r)
		}
	}
	if len(left) == 0 {
		return nil
	}
	s.bg.Add(1)
	go s.dropUnused(left)
	return nil
}

func (s *Store) dropUnused(ranges []*util.Range) {
	defer s.bg.Done()
	start, n := time.Now(), 0
	for _, all := range ranges {
		if !s.dropRange(all, &n) {
			return
		}
	}
	s.log.Info("deleted search index keys of earlier index versions (fc/, stop words)", "keys", n, "took", time.Since(start).Round(time.Millisecond))
}

// dropRange deletes the keys of all in pieces (see startDropUnused); false
// when it stopped early (Close, or an error, logged).
func (s *Store) dropRange(all *util.Range, n *int) bool {
	from := all.Start // the start of the range deleted since the last compaction
	var next []byte   // where the next batch starts; nil: at the first key
	for i := 1; ; i++ {
		t0 := time.Now()
		var done bool
		var err error
		next, done, err = s.dropBatch(all, next, n)
		if err != nil {
			s.log.Warn("deleting unused search index keys stopped; the next open goes on", "deleted", *n, "err", err)
			return false
		}
		if done || i%compactBatches == 0 {
			to := next
			if done {
				to = all.Limit
			}
			if err := s.db.view(func(db *leveldb.DB) error { return db.CompactRange(util.Range{Start: from, Limit: to}) }); err != nil {
				s.log.Warn("compacting deleted search index keys", "err", err)
			}
			from = to
		}
		if done {
			return true
		}
		select {
		case <-s.quit:
			return false
		case <-time.After(time.Since(t0)):
		}
	}
}

// dropBatch deletes up to dropBatch keys of all from from on (nil: from
// its start).
func (s *Store) dropBatch(all *util.Range, from []byte, n *int) (next []byte, done bool, err error) {
	r := &util.Range{Start: all.Start, Limit: all.Limit}
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
