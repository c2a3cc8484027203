package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// The search index: an inverted index of the words of every message (see
// Words), written in the same batch as the message record, so the index is
// never behind the messages. Keys only, no values:
//
//	fw/<word>/<^ms8><phone>/<^seq8>
//
// ^ms8 is the message's Received time and ^seq8 its seq in the
// conversation, both bit-inverted big-endian, so that a forward scan of one
// word's keys is newest first: the order of results is (Received
// descending, phone ascending, seq descending). A query of several words
// walks their lists together, seeking each to the next key of the others (a
// leapfrog intersection), so its cost follows the shortest list, not the
// number of messages. A search of a few conversations reads them or walks
// the lists keeping their phones (searchconv.go).
//
// Stop words (StopWords) are not listed: a query's other words are
// intersected and its stop words checked in each candidate's text.
//
// Index version 1 also kept fc/<phone>/<word>/<^ms8><^seq8>, the same lists
// per conversation: a second key per word of every message, which doubled
// the index's writes and compactions (issue 22). Version 2 dropped it;
// version 3 drops the stop words' lists. A store of an earlier version is
// marked 3 at open and the keys it no longer reads are deleted in the
// background (dropUnused, searchconv.go).
const (
	pWord      = "fw/"      // find: words of every conversation
	pConvWord  = "fc/"      // index version 1's words of one conversation: deleted at open
	keySearch  = "g/search" // the index version, once every stored message is indexed
	searchV1   = "1"        // fw/ and fc/
	searchV2   = "2"        // fw/ only
	searchV3   = "3"        // fw/ without stop words
	buildBatch = 20000      // messages per batch while building the index at open
)

func inv8(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, ^v) }

func wordPrefix(word string) []byte { return []byte(pWord + word + "/") }

// pos is a message's place in the result order: the suffix of its fw/ keys.
type pos []byte

func makePos(ms int64, phone string, seq uint64) pos {
	b := inv8(make([]byte, 0, 8+len(phone)+9), uint64(max(ms, 0)))
	b = append(append(b, phone...), '/')
	return inv8(b, seq)
}

func (p pos) phone() string { return string(p[8 : len(p)-9]) }
func (p pos) seq() uint64   { return ^binary.BigEndian.Uint64(p[len(p)-8:]) }

// indexWords puts the index keys of one message record into b. The keys
// are built in one buffer, which Put copies.
func indexWords(b *leveldb.Batch, phone string, seq uint64, rec *record) {
	p := makePos(rec.Received, phone, seq)
	var kb [128]byte
	k := kb[:0]
	for _, w := range Words(rec.Text) {
		if isStopWord(w) {
			continue
		}
		k = append(append(append(append(k[:0], pWord...), w...), '/'), p...)
		b.Put(k, nil)
	}
}

// indexPut indexes a message record being put in the batch (called by
// txn.put for every m/ key: whatever writes a message indexes it). A record
// put again (a replayed cluster entry) has the same keys again.
func (t *txn) indexPut(key, value []byte) {
	if !isMsgKey(key) || t.s.opts.noSearchIndex {
		return
	}
	var rec record
	if err := json.Unmarshal(value, &rec); err != nil {
		// Records are marshalled by the store itself; this cannot happen.
		t.s.log.Error("search index: undecodable record", "key", key, "err", err)
		return
	}
	t.indexRecord(key, &rec)
}

func isMsgKey(key []byte) bool { return len(key) >= len(pMsg)+10 && bytes.HasPrefix(key, []byte(pMsg)) }

// indexRecord indexes rec, the record at message key key.
func (t *txn) indexRecord(key []byte, rec *record) {
	if t.s.opts.noSearchIndex {
		return
	}
	phone := string(key[len(pMsg) : len(key)-9])
	indexWords(&t.batch, phone, binary.BigEndian.Uint64(key[len(key)-8:]), rec)
}

// initSearch builds the index of a store written before it existed: once,
// at open, before the writer starts, in batches that are not synced but are
// followed by the synced marker (LevelDB's journal is sequential, so the
// marker durable means everything before it is). A build cut short by a
// crash is done again at the next open; its keys are the same. A store of
// index version 1 or 2 is marked version 3 (so that a build that still
// reads fc/ or the stop words' lists refuses it) and what is left of the
// keys version 3 does not read is deleted in the background.
func (s *Store) initSearch() error {
	v, err := s.db.Get([]byte(keySearch), nil)
	switch {
	case err == nil && string(v) == searchV3:
	case err == nil && (string(v) == searchV1 || string(v) == searchV2):
		if err := s.db.Put([]byte(keySearch), []byte(searchV3), &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("mark search index version %s: %w", searchV3, err)
		}
	case err == nil:
		return fmt.Errorf("unknown search index version %q (this build reads %q, %q and %q)", v, searchV1, searchV2, searchV3)
	case !errors.Is(err, leveldb.ErrNotFound):
		return fmt.Errorf("read search index version: %w", err)
	default:
		start := time.Now()
		n, err := s.buildSearch()
		if err != nil {
			return fmt.Errorf("build search index: %w", err)
		}
		if err := s.db.Put([]byte(keySearch), []byte(searchV3), &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("build search index: %w", err)
		}
		if n > 0 {
			s.log.Info("search index built for messages stored before it existed", "messages", n, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	return s.startDropUnused()
}

func (s *Store) buildSearch() (n int, err error) {
	err = s.db.view(func(db *leveldb.DB) error {
		n, err = buildSearchIn(db, s.log)
		return err
	})
	return n, err
}

func buildSearchIn(db *leveldb.DB, log *slog.Logger) (int, error) {
	it := db.NewIterator(util.BytesPrefix([]byte(pMsg)), nil)
	defer it.Release()
	var b leveldb.Batch
	n := 0
	for it.Next() {
		k := it.Key()
		if len(k) < len(pMsg)+10 {
			return n, fmt.Errorf("short message key %q", k)
		}
		var rec record
		if err := json.Unmarshal(it.Value(), &rec); err != nil {
			return n, fmt.Errorf("corrupt message record %q: %w", k, err)
		}
		indexWords(&b, string(k[len(pMsg):len(k)-9]), binary.BigEndian.Uint64(k[len(k)-8:]), &rec)
		if n++; n%buildBatch == 0 {
			if err := db.Write(&b, nil); err != nil {
				return n, err
			}
			b.Reset()
			if n%(50*buildBatch) == 0 {
				log.Info("building the search index", "messages", n)
			}
		}
	}
	if err := it.Error(); err != nil {
		return n, err
	}
	return n, db.Write(&b, nil)
}

// Search returns up to limit messages of any conversation that hold every
// word of query q (see ParseQuery and Words), newest first, starting after
// message before (before=="" means from the newest). more=true when more
// matches follow the last one returned (page on with its id as before).
// limit 0 means DefaultSearchPage. A bad query or limit is ErrInvalid; an
// unknown before is ErrNotFound.
func (s *Store) Search(q, before string, limit int) (list []protocol.Message, more bool, err error) {
	words, err := ParseQuery(q)
	if err == nil {
		limit, err = searchLimit(limit)
	}
	if err != nil {
		return nil, false, errQuery(q, err)
	}
	err = s.searchSnapshot(func(db *leveldb.DB, snap *leveldb.Snapshot) error {
		get := snapGetter(snap)
		var from pos
		if before != "" {
			if from, err = cursor(get, before, nil); err != nil {
				return err
			}
			from = append(from, 0) // after before, not at it
		}
		found, err := matches(db, snap, words, from, nil, limit+1)
		if err != nil {
			return err
		}
		list, more, err = readFound(get, found, limit)
		return err
	})
	if err != nil {
		return nil, false, errQuery(q, err)
	}
	return list, more, nil
}

// SearchIn is Search restricted to the conversations of phones (none: no
// results). A before that is not in one of them is ErrNotFound.
func (s *Store) SearchIn(phones []string, q, before string, limit int) (list []protocol.Message, more bool, err error) {
	words, err := ParseQuery(q)
	if err == nil {
		limit, err = searchLimit(limit)
	}
	if err != nil {
		return nil, false, errQuery(q, err)
	}
	phones = slices.Compact(slices.Sorted(slices.Values(phones)))
	err = s.searchSnapshot(func(db *leveldb.DB, snap *leveldb.Snapshot) error {
		get := snapGetter(snap)
		var from pos
		if before != "" {
			if from, err = cursor(get, before, phones); err != nil {
				return err
			}
		}
		var found []pos
		for _, phone := range phones {
			part, err := searchConv(db, snap, s.opts.convMode, phone, words, from, limit+1)
			if err != nil {
				return err
			}
			found = append(found, part...)
		}
		slices.SortFunc(found, func(a, b pos) int { return bytes.Compare(a, b) })
		list, more, err = readFound(get, found, limit)
		return err
	})
	if err != nil {
		return nil, false, errQuery(q, err)
	}
	return list, more, nil
}

// searchSnapshot runs fn against a consistent snapshot of db, which fn may
// also ask for size estimates (holding the database once: a second read
// lock taken inside the first could wait for the writer's reopen forever).
func (s *Store) searchSnapshot(fn func(db *leveldb.DB, snap *leveldb.Snapshot) error) error {
	return readErr(s.db.view(func(db *leveldb.DB) error {
		snap, err := db.GetSnapshot()
		if err != nil {
			return err
		}
		defer snap.Release()
		return fn(db, snap)
	}))
}

// rarestFirst returns the prefixes of the word lists ordered by their size
// on disk, smallest first (LevelDB's estimate from its tables; a list
// still in the memtable counts as empty). The intersection then walks the
// rarest list and steps through the next rarest, where its next key is
// near, instead of seeking the densest list once per candidate: for three
// words of which one is rare, several times fewer seeks.
func rarestFirst(db *leveldb.DB, words []string) ([][]byte, error) {
	prefixes := wordPrefixes(words)
	if len(prefixes) < 2 {
		return prefixes, nil
	}
	sizes, err := listSizes(db, prefixes)
	if err != nil {
		return nil, err
	}
	idx := make([]int, len(prefixes))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(sizes[a], sizes[b]) })
	sorted := make([][]byte, len(prefixes))
	for i, j := range idx {
		sorted[i] = prefixes[j]
	}
	return sorted, nil
}

func wordPrefixes(words []string) [][]byte {
	prefixes := make([][]byte, len(words))
	for i, w := range words {
		prefixes[i] = wordPrefix(w)
	}
	return prefixes
}

// listSizes returns the sizes on disk of the lists of prefixes.
func listSizes(db *leveldb.DB, prefixes [][]byte) (leveldb.Sizes, error) {
	ranges := make([]util.Range, len(prefixes))
	for i, p := range prefixes {
		ranges[i] = *util.BytesPrefix(p)
	}
	return db.SizeOf(ranges)
}

// cursor returns the position of message id, which must be in one of
// phones when phones is not nil.
func cursor(get getter, id string, phones []string) (pos, error) {
	rec, key, err := recordAt(get, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("before %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	phone := string(key[len(pMsg) : len(key)-9])
	if phones != nil {
		if _, ok := slices.BinarySearch(phones, phone); !ok {
			return nil, fmt.Errorf("before %s is not in the conversations searched: %w", id, ErrNotFound)
		}
	}
	return makePos(rec.Received, phone, binary.BigEndian.Uint64(key[len(key)-8:])), nil
}

// intersect calls emit, in key order, with every suffix that follows each
// of prefixes and is at or after start, until emit returns false. Each list
// is moved to the greatest suffix seen so far until all agree.
func intersect(snap *leveldb.Snapshot, prefixes [][]byte, start []byte, emit func(suffix []byte) bool) error {
	lists := make([]postings, len(prefixes))
	for i, p := range prefixes {
		lists[i] = postings{it: snap.NewIterator(util.BytesPrefix(p), nil), prefix: p}
		defer lists[i].it.Release()
	}
	target := slices.Clone(start)
	for {
		agreed := true
		for i := range lists {
			cur, ok := lists[i].reach(target)
			if !ok {
				return firstErr(lists)
			}
			if !bytes.Equal(cur, target) {
				target = append(target[:0], cur...)
				agreed = i == 0 // the others must reach the new target
				if i > 0 {
					break
				}
			}
		}
		if agreed {
			if !emit(target) {
				break
			}
			target = append(target, 0) // the next key after this one
		}
	}
	return firstErr(lists)
}

// postings is one word's list being walked.
type postings struct {
	it     iterator.Iterator
	prefix []byte
	cur    []byte // suffix of the current key; nil before the first move
}

// reach moves to the first suffix at or after target: not at all when
// already there; by steps when it is near (a seek costs as much as dozens of
// steps: it seeks every level of the LSM tree), else by a seek.
func (p *postings) reach(target []byte) ([]byte, bool) {
	if p.cur != nil && bytes.Compare(p.cur, target) >= 0 {
		return p.cur, true
	}
	for range maxSteps {
		if p.cur == nil {
			break
		}
		if !p.it.Next() {
			return nil, false // the list is done: nothing at or after target
		}
		if suffix := p.it.Key()[len(p.prefix):]; bytes.Compare(suffix, target) >= 0 {
			p.cur = append(p.cur[:0], suffix...)
			return p.cur, true
		}
	}
	if !p.it.Seek(append(slices.Clip(p.prefix), target...)) {
		return nil, false
	}
	p.cur = append(p.cur[:0], p.it.Key()[len(p.prefix):]...)
	return p.cur, true
}

// maxSteps is how many keys reach steps over before it seeks.
const maxSteps = 16

func firstErr(lists []postings) error {
	for _, p := range lists {
		if err := p.it.Error(); err != nil {
			return err
		}
	}
	return nil
}

// matches walks the index lists of words (those that have one) from start
// and returns, in order, the positions of the messages that hold every one
// of words, among those keep accepts (nil: all), until it has n.
func matches(db *leveldb.DB, snap *leveldb.Snapshot, words []string, start []byte, keep func(pos) bool, n int) ([]pos, error) {
	listed, checked := splitQuery(words)
	prefixes, err := rarestFirst(db, listed)
	if err != nil {
		return nil, err
	}
	get := snapGetter(snap)
	var found []pos
	var ferr error
	err = intersect(snap, prefixes, start, func(p []byte) bool {
		if keep != nil && !keep(p) {
			return true
		}
		ok, err := holdsStopWords(get, p, checked)
		if err != nil {
			ferr = err
			return false
		}
		if ok {
			found = append(found, slices.Clone(p))
		}
		return len(found) < n
	})
	return found, cmp.Or(err, ferr)
}

// holdsStopWords reports whether the message at p holds every one of
// checked (stop words, which the index does not list); true for none.
func holdsStopWords(get getter, p pos, checked []string) (bool, error) {
	if len(checked) == 0 {
		return true, nil
	}
	phone := p.phone()
	v, ok, err := get(msgKey(phone, p.seq()))
	if err != nil {
		return false, err
	}
	if !ok {
		return false, fmt.Errorf("search index points at a missing message %s #%d", phone, p.seq())
	}
	var rec struct {
		Text string `json:"t"`
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return false, fmt.Errorf("corrupt message record %s #%d: %w", phone, p.seq(), err)
	}
	return holdsAll(Words(rec.Text), checked), nil
}

// readFound reads the messages at the first limit positions.
func readFound(get getter, found []pos, limit int) ([]protocol.Message, bool, error) {
	more := len(found) > limit
	found = found[:min(len(found), limit)]
	list := make([]protocol.Message, 0, len(found))
	for _, p := range found {
		phone := p.phone()
		v, ok, err := get(msgKey(phone, p.seq()))
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, fmt.Errorf("search index points at a missing message %s #%d", phone, p.seq())
		}
		m, err := decodeMessage(get, phone, v)
		if err != nil {
			return nil, false, err
		}
		list = append(list, m)
	}
	return list, more, nil
}

// indexRecordTo puts into b the search index keys of the message record at
// key (value its JSON), the keys txn.put writes with it; nothing for a key
// that is not a message's. For a bulk writer that orders the keys itself
// (ImportState, state.go).
func indexRecordTo(b *leveldb.Batch, key, value []byte) error {
	if !isMsgKey(key) {
		return nil
	}
	var rec record
	if err := json.Unmarshal(value, &rec); err != nil {
		return fmt.Errorf("message record %q: %w", key, err)
	}
	indexWords(b, string(key[len(pMsg):len(key)-9]), binary.BigEndian.Uint64(key[len(key)-8:]), &rec)
	return nil
}
