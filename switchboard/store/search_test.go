package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

func TestWords(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes: cut to 32 characters
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"", nil},
		{"  ,.!? ", nil},
		{"Hello, World! hello", []string{"hello", "world"}},
		{"ÉCOLE école Ecole", []string{"école", "ecole"}},
		{"order #1234-A, ORDER", []string{"order", "1234", "a"}},
		{"e\u0301t\u00e9", []string{"e\u0301t\u00e9"}}, // a combining mark stays in the word
		{"東京へ行く", []string{"東", "京", "へ", "行", "く"}},
		{"abc東def", []string{"abc", "東", "def"}},
		{"Straße ΣΊΣΥΦΟΣ", []string{"straße", "σίσυφοσ"}},
		{"it's 3½ o'clock", []string{"it", "s", "3½", "o", "clock"}},
		{long + " x", []string{strings.Repeat("é", 32), "x"}},
		{"bad\xffutf8", []string{"bad", "utf8"}},
	} {
		if got := Words(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("Words(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want []string
		err  string
	}{
		{q: "Refund  refund ORDER", want: []string{"refund", "order"}},
		{q: "", err: "holds no word"},
		{q: " -- !! ", err: "holds no word"},
		{q: "a b c d e f g h", want: []string{"a", "b", "c", "d", "e", "f", "g", "h"}},
		{q: "a b c d e f g h i", err: "holds 9 words; at most 8"},
		{q: strings.Repeat("x", MaxQuery+1), err: "257 bytes; at most 256"},
		{q: "bad\xff", err: "not valid UTF-8"},
		{q: "Where is my order?", want: []string{"where", "is", "my", "order"}},
		{q: "it's the one", want: []string{"it", "s", "the", "one"}},
		{q: "Is it the?", err: "only common words, such as \"is\"; add a less common word"},
	} {
		got, err := ParseQuery(tc.q)
		switch {
		case tc.err != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseQuery(%q) error = %v, want ErrInvalid with %q", tc.q, err, tc.err)
		case tc.err == "" && (err != nil || !slices.Equal(got, tc.want)):
			t.Errorf("ParseQuery(%q) = %q, %v; want %q", tc.q, got, err, tc.want)
		}
	}
}

// scanned is a message found by a full scan, with its place in the result
// order.
type scanned struct {
	msg protocol.Message
	seq uint64
}

// scanSearch is the search without an index: it reads, decodes and
// tokenizes every stored message. It is the tests' oracle and the
// benchmark's baseline. phones nil means every conversation.
func scanSearch(s *Store, q string, phones []string) ([]protocol.Message, error) {
	words, err := ParseQuery(q)
	if err != nil {
		return nil, err
	}
	var found []scanned
	err = s.snapshot(func(snap *leveldb.Snapshot) error {
		get := snapGetter(snap)
		it := snap.NewIterator(util.BytesPrefix([]byte(pMsg)), nil)
		defer it.Release()
		for it.Next() {
			k := it.Key()
			phone := string(k[len(pMsg) : len(k)-9])
			if phones != nil && !slices.Contains(phones, phone) {
				continue
			}
			var rec record
			if err := json.Unmarshal(it.Value(), &rec); err != nil {
				return err
			}
			have := Words(rec.Text)
			if !allIn(words, have) {
				continue
			}
			m, err := decodeMessage(get, phone, it.Value())
			if err != nil {
				return err
			}
			found = append(found, scanned{m, binary.BigEndian.Uint64(k[len(k)-8:])})
		}
		return it.Error()
	})
	slices.SortFunc(found, func(a, b scanned) int {
		return cmp.Or(cmp.Compare(b.msg.Received, a.msg.Received),
			strings.Compare(a.msg.Phone+"/", b.msg.Phone+"/"), cmp.Compare(b.seq, a.seq))
	})
	list := make([]protocol.Message, len(found))
	for i, f := range found {
		list[i] = f.msg
	}
	return list, err
}

func allIn(words, have []string) bool {
	for _, w := range words {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// pageAll pages through a search with before until more is false.
func pageAll(t *testing.T, search func(before string) ([]protocol.Message, bool, error)) []protocol.Message {
	t.Helper()
	var all []protocol.Message
	before := ""
	for range 1000 {
		list, more, err := search(before)
		if err != nil {
			t.Fatalf("search before %q: %v", before, err)
		}
		all = append(all, list...)
		if !more {
			return all
		}
		if len(list) == 0 {
			t.Fatalf("more=true with an empty page")
		}
		before = list[len(list)-1].ID
	}
	t.Fatalf("paging did not end")
	return nil
}

func TestSearchBasics(t *testing.T) {
	s := newStore(t)
	a, b := "+15551230001", "+15551230002"
	m1, _ := mustInbound(t, s, Inbound{Sid: "S1", Phone: a, Text: "Where is my order?"})
	m2, _ := mustReply(t, s, Reply{Phone: a, Agent: "alice", Ref: "r1", Text: "Your ORDER ships today."})
	m3, _ := mustInbound(t, s, Inbound{Sid: "S2", Phone: b, Text: "order 1234: refund please"})
	mustInbound(t, s, Inbound{Sid: "S3", Phone: b, Text: "orders, reorder: no match"})
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"order", []string{m3.ID, m2.ID, m1.ID}},
		{"ORDER refund", []string{m3.ID}},
		{"ships order", []string{m2.ID}},
		{"refund ships", nil},
		{"nothing", nil},
	} {
		list, more, err := s.Search(tc.q, "", 0)
		if err != nil || more || !slices.Equal(ids(list), tc.want) {
			t.Errorf("Search(%q) = %q more=%v err=%v, want %q", tc.q, ids(list), more, err, tc.want)
		}
	}
	// A reply is found with its current status; the phone is set.
	if _, _, err := s.SetStatus(context.Background(), m2.ID, protocol.StatusDelivered, "SMx"); err != nil {
		t.Fatal(err)
	}
	list, _, _ := s.Search("ships", "", 0)
	if len(list) != 1 || list[0].Status != protocol.StatusDelivered || list[0].Phone != a || list[0].Direction != protocol.Out {
		t.Errorf("Search(ships) = %+v, want the delivered reply in %s", list, a)
	}
	// Paging.
	list, more, err := s.Search("order", "", 2)
	if err != nil || !more || !slices.Equal(ids(list), []string{m3.ID, m2.ID}) {
		t.Fatalf("page 1 = %q more=%v err=%v", ids(list), more, err)
	}
	list, more, err = s.Search("order", m2.ID, 2)
	if err != nil || more || !slices.Equal(ids(list), []string{m1.ID}) {
		t.Fatalf("page 2 = %q more=%v err=%v", ids(list), more, err)
	}
	// One conversation, and several.
	list, _, err = s.SearchIn([]string{a}, "order", "", 0)
	if err != nil || !slices.Equal(ids(list), []string{m2.ID, m1.ID}) {
		t.Errorf("SearchIn(a) = %q, %v", ids(list), err)
	}
	list, _, err = s.SearchIn([]string{b, a, b}, "order", m3.ID, 0)
	if err != nil || !slices.Equal(ids(list), []string{m2.ID, m1.ID}) {
		t.Errorf("SearchIn(b, a) after m3 = %q, %v", ids(list), err)
	}
	if list, _, err := s.SearchIn(nil, "order", "", 0); err != nil || len(list) != 0 {
		t.Errorf("SearchIn(no phones) = %q, %v; want nothing", ids(list), err)
	}
	// Errors.
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"unknown before", second(s.Search("order", "nope", 0)), ErrNotFound},
		{"before in another conversation", second(s.SearchIn([]string{a}, "order", m3.ID, 0)), ErrNotFound},
		{"no words", second(s.Search("?!", "", 0)), ErrInvalid},
		{"limit too large", second(s.Search("order", "", MaxSearchPage+1)), ErrInvalid},
		{"negative limit", second(s.SearchIn([]string{a}, "order", "", -1)), ErrInvalid},
		{"bad phone", second(s.SearchIn([]string{"5551"}, "order", "", 0)), ErrInvalid},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

func second(_ []protocol.Message, _ bool, err error) error { return err }

// TestSearchMatchesScan compares the index with a full scan over random
// conversations: times that tie and run backwards, several directions,
// every page size, one conversation and several.
func TestSearchMatchesScan(t *testing.T) {
	s := newStore(t)
	rng := rand.New(rand.NewPCG(1, 2))
	// Stop words (not in the index, checked in the text) among the others.
	vocab := []string{"refund", "order", "late", "camera", "thanks", "Order", "ship", "box", "the", "my", "it's", "IS"}
	phones := []string{"+1555000", "+15550001", "+1555001", "+44700", "+4470", "whatsapp:+1555000"} // some are prefixes of others
	base := time.UnixMilli(1732200000000)
	ctx := context.Background()
	for i := range 400 {
		var words []string
		for range 1 + rng.IntN(4) {
			words = append(words, vocab[rng.IntN(len(vocab))])
		}
		text := strings.Join(words, " ")
		phone := phones[rng.IntN(len(phones))]
		at := base.Add(time.Duration(rng.IntN(60)) * time.Millisecond) // many ties, not in seq order
		var err error
		if rng.IntN(3) == 0 {
			_, _, err = s.AppendReply(ctx, Reply{Phone: phone, Agent: "bob", Ref: fmt.Sprint(i), Text: text, Sent: at})
		} else {
			_, _, err = s.AppendInbound(ctx, Inbound{Sid: fmt.Sprint(i), Phone: phone, Text: text, Received: at})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	queries := []string{"refund", "order", "order late", "camera thanks ship", "box box", "refund order late camera", "absent",
		"the order", "my refund is late", "it's the box", "s camera", "absent the"}
	for _, q := range []string{"the", "my is", "it's"} {
		if _, _, err := s.Search(q, "", 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("Search(%q) of stop words only: %v, want ErrInvalid", q, err)
		}
		if _, _, err := s.SearchIn(phones, q, "", 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("SearchIn(%q) of stop words only: %v, want ErrInvalid", q, err)
		}
	}
	for _, q := range queries {
		want, err := scanSearch(s, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int{1, 3, 7, 200} {
			got := pageAll(t, func(before string) ([]protocol.Message, bool, error) { return s.Search(q, before, limit) })
			if !sameMessages(got, want) {
				t.Fatalf("Search(%q) limit %d: %d results\n%q\nscan: %d\n%q", q, limit, len(got), ids(got), len(want), ids(want))
			}
		}
		for _, in := range [][]string{{phones[0]}, {phones[1], phones[0]}, {phones[3], phones[2], phones[4]}, phones} {
			want, err := scanSearch(s, q, in)
			if err != nil {
				t.Fatal(err)
			}
			// Both ways of searching a conversation, and the choice between them.
			for _, mode := range []convMode{convAuto, convScan, convLists} {
				s.opts.convMode = mode
				for _, limit := range []int{1, 4, 200} {
					got := pageAll(t, func(before string) ([]protocol.Message, bool, error) { return s.SearchIn(in, q, before, limit) })
					if !sameMessages(got, want) {
						t.Fatalf("SearchIn(%q, %q) mode %d limit %d: %q\nscan: %q", in, q, mode, limit, ids(got), ids(want))
					}
				}
			}
			s.opts.convMode = convAuto
		}
	}
}

// TestSearchIndexesLogEntries: messages stored from the cluster log, and a
// replayed entry, are indexed like the others (once).
func TestSearchIndexesLogEntries(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	items := []LogItem{
		{Inbound: &Inbound{ID: "i1", Sid: "S1", Phone: "+15551230001", Text: "camera broken", LogPos: 1}},
		{Reply: &Reply{ID: "r1", Phone: "+15551230001", Agent: "alice", Ref: "x", Text: "send the camera back", LogPos: 2}},
	}
	for range 2 { // the second run is a replay
		if _, err := s.ApplyLog(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	list, _, err := s.Search("camera", "", 0)
	if err != nil || !slices.Equal(ids(list), []string{"r1", "i1"}) {
		t.Fatalf("Search(camera) = %q, %v; want r1, i1", ids(list), err)
	}
}

// TestSearchIndexBuiltAtOpen: a store written before the index existed (no
// marker, no index keys) is indexed once when it is opened.
func TestSearchIndexBuiltAtOpen(t *testing.T) {
	opts := testOptions(t)
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	m1, _ := mustInbound(t, s, Inbound{Sid: "S1", Phone: "+15551230001", Text: "old refund"})
	m2, _ := mustReply(t, s, Reply{Phone: "+15551230002", Agent: "alice", Ref: "r", Text: "refund done"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Make it a store of the previous version.
	db, err := leveldb.OpenFile(opts.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b leveldb.Batch
	for _, p := range []string{pWord, pConvWord, keySearch} {
		it := db.NewIterator(util.BytesPrefix([]byte(p)), nil)
		for it.Next() {
			b.Delete(slices.Clone(it.Key()))
		}
		it.Release()
	}
	if b.Len() < 5 {
		t.Fatalf("only %d index keys to delete", b.Len())
	}
	if err := db.Write(&b, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, opts)
	list, _, err := s.Search("refund", "", 0)
	if err != nil || !slices.Equal(ids(list), []string{m2.ID, m1.ID}) {
		t.Fatalf("after open: Search(refund) = %q, %v; want %s, %s", ids(list), err, m2.ID, m1.ID)
	}
	if v, err := s.db.Get([]byte(keySearch), nil); err != nil || string(v) != searchV3 {
		t.Fatalf("marker = %q, %v", v, err)
	}
	// New messages keep being indexed after the build.
	m3, _ := mustInbound(t, s, Inbound{Sid: "S3", Phone: "+15551230001", Text: "refund again"})
	list, _, _ = s.Search("refund", "", 1)
	if len(list) != 1 || list[0].ID != m3.ID {
		t.Fatalf("Search(refund) = %q, want %s first", ids(list), m3.ID)
	}
}

// TestSearchIndexEarlierVersionsDropped: a store of index version 1 (with
// the per-conversation fc/ keys and the stop words' lists) or 2 (with the
// stop words' lists) is marked version 3 at open and the keys version 3
// does not read are deleted in the background (Close waits for it); a
// store marked 3 with such keys left (a crash during the deletion) has them
// deleted at the next open. Search answers as before throughout, stop
// words included.
func TestSearchIndexEarlierVersionsDropped(t *testing.T) {
	opts := testOptions(t)
	s := openStore(t, opts)
	m1, _ := mustInbound(t, s, Inbound{Sid: "S1", Phone: "+15551230001", Text: "the old refund"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, opts.Dir, pWord+"the/"); n != 0 {
		t.Fatalf("version 3 wrote %d keys of the stop word the", n)
	}
	for _, marker := range []string{searchV1, searchV2, searchV3} {
		db, err := leveldb.OpenFile(opts.Dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		var b leveldb.Batch
		for i := range 300 { // keys of the earlier layouts
			if marker == searchV1 {
				b.Put(fmt.Appendf(nil, "%s+1555123%04d/refund/%016x", pConvWord, i, i), nil)
			}
			b.Put(fmt.Appendf(nil, "%sthe/%016x+1555123%04d/%016x", pWord, i, i, i), nil)
			b.Put(fmt.Appendf(nil, "%ss/%016x+1555123%04d/%016x", pWord, i, i, i), nil)
		}
		b.Put([]byte(keySearch), []byte(marker))
		if err := db.Write(&b, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.db.Get([]byte(keySearch), nil); err != nil || string(v) != searchV3 {
			t.Fatalf("marker %s: after open the marker is %q, %v; want %s", marker, v, err, searchV3)
		}
		for _, q := range []string{"refund", "the refund"} {
			for _, phones := range [][]string{nil, {"+15551230001"}} {
				list, _, err := s.SearchIn(phones, q, "", 0)
				if phones == nil {
					list, _, err = s.Search(q, "", 0)
				}
				if err != nil || !slices.Equal(ids(list), []string{m1.ID}) {
					t.Fatalf("marker %s: search %q in %q = %q, %v; want %s", marker, q, phones, ids(list), err, m1.ID)
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{pConvWord, pWord + "the/", pWord + "s/"} {
			if n := countKeys(t, opts.Dir, p); n != 0 {
				t.Fatalf("marker %s: %d %s keys left after Close", marker, n, p)
			}
		}
		if n := countKeys(t, opts.Dir, pWord+"refund/"); n != 1 {
			t.Fatalf("marker %s: %d keys of refund, want 1 (only unused keys are deleted)", marker, n)
		}
	}
}

// TestSearchIndexV1DroppedInPieces: a deletion of many batches compacts
// what it deleted every compactBatches batches and ends with no fc/ key.
func TestSearchIndexV1DroppedInPieces(t *testing.T) {
	batch, every := dropBatch, compactBatches
	dropBatch, compactBatches = 7, 3
	t.Cleanup(func() { dropBatch, compactBatches = batch, every })
	opts := testOptions(t)
	if err := openStore(t, opts).Close(); err != nil {
		t.Fatal(err)
	}
	db, err := leveldb.OpenFile(opts.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b leveldb.Batch
	for i := range 300 {
		b.Put(fmt.Appendf(nil, "%s+1555123%04d/refund/%016x", pConvWord, i, i), nil)
	}
	b.Put([]byte(keySearch), []byte(searchV1))
	if err := db.Write(&b, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, opts)
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := 0
		if err := s.db.scan([]byte(pConvWord), func(it iterator.Iterator) error {
			for it.Next() {
				left++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d fc/ keys left after 10 s", left)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func countKeys(t *testing.T, dir, prefix string) int {
	t.Helper()
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it := db.NewIterator(util.BytesPrefix([]byte(prefix)), nil)
	defer it.Release()
	n := 0
	for it.Next() {
		n++
	}
	return n
}

func TestSearchUnknownIndexVersion(t *testing.T) {
	opts := testOptions(t)
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Put([]byte(keySearch), []byte("9"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(opts); err == nil || !strings.Contains(err.Error(), "search index version") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open with index version 9: %v, want an error", err)
	}
}

// TestKeyPrefixesDistinct: no key prefix of the store is a prefix of
// another, so a prefix scan of one never reads another's keys.
func TestKeyPrefixesDistinct(t *testing.T) {
	prefixes := []string{pMsg, pStatus, pSid, pRef, pID, pPID, pOutbox, pConv, pJournal, keyCheck, keyGSeq, keyVer,
		pNavProduct, pNavCounts, pNavUser, keyNavOffset, keyNavHead, pOptOut, pLog, keyLogNext, pWord, pConvWord, keySearch, pContact, pCanned}
	for i, a := range prefixes {
		for j, b := range prefixes {
			if i != j && strings.HasPrefix(b, a) {
				t.Errorf("key prefix %q is a prefix of %q", a, b)
			}
		}
	}
}

func sameMessages(a, b []protocol.Message) bool {
	return slices.EqualFunc(a, b, func(x, y protocol.Message) bool { return reflect.DeepEqual(x, y) })
}

// TestSearchConvChoice: a conversation is read when it is short, or when
// it is long but the rarest word's list is longer still; otherwise the
// lists are walked. Either way the results are the full scan's.
func TestSearchConvChoice(t *testing.T) {
	s := newStore(t)
	long, short := "+15550000001", "+15550000002"
	base := time.UnixMilli(1732200000000)
	items := make([]LogItem, 0, 22000)
	for i := range 22000 {
		phone, text := "+1555"+strconv.Itoa(1000000+i%500), "common word"
		switch {
		case i%20 == 0: // 1,100 messages: more than convScanMin
			phone, text = long, "alpha common"
		case i == 1:
			phone, text = short, "alpha"
		}
		items = append(items, LogItem{Inbound: &Inbound{ID: fmt.Sprintf("i%05d", i), Sid: fmt.Sprint(i), Phone: phone,
			Text: text, Received: base.Add(time.Duration(i) * time.Second), LogPos: int64(i + 1)}})
	}
	for len(items) > 0 {
		n := min(len(items), 2000)
		if _, err := s.ApplyLog(WithoutSync(context.Background()), items[:n]); err != nil {
			t.Fatal(err)
		}
		items = items[n:]
	}
	if err := s.db.view(func(db *leveldb.DB) error { return db.CompactRange(util.Range{}) }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		phone, q string
		want     convMode
	}{
		{short, "common", convScan},       // short: always read
		{long, "alpha", convLists},        // 1,100 records against a list of 1,101 keys
		{long, "common", convScan},        // against a list of 22,000 keys, twice as long as the threshold
		{long, "alpha common", convLists}, // the rarest list decides
	} {
		err := s.searchSnapshot(func(db *leveldb.DB, snap *leveldb.Snapshot) error {
			words, _ := ParseQuery(tc.q)
			got, err := chooseConvMode(db, snap, tc.phone, words)
			if err == nil && got != tc.want {
				t.Errorf("%s %q: mode %d, want %d", tc.phone, tc.q, got, tc.want)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want, err := scanSearch(s, tc.q, []string{tc.phone})
		if err != nil {
			t.Fatal(err)
		}
		got := pageAll(t, func(before string) ([]protocol.Message, bool, error) {
			return s.SearchIn([]string{tc.phone}, tc.q, before, 200)
		})
		if !sameMessages(got, want) {
			t.Errorf("SearchIn(%s, %q): %d results, scan %d", tc.phone, tc.q, len(got), len(want))
		}
	}
}

// TestStopWords: every stop word is one word as Words makes them, and none
// is longer than isStopWord's shortcut allows.
func TestStopWords(t *testing.T) {
	for _, w := range StopWords {
		if got := Words(w); !slices.Equal(got, []string{w}) {
			t.Errorf("Words(%q) = %q: not a word of the index's form", w, got)
		}
		if !isStopWord(w) {
			t.Errorf("isStopWord(%q) = false", w)
		}
	}
	for _, w := range []string{"order", "stop", "thee", "ita", "no", "not"} {
		if isStopWord(w) {
			t.Errorf("isStopWord(%q) = true", w)
		}
	}
}
