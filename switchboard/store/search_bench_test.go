package store

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// The search benchmark builds a store of 1,000,000 messages (minutes), so it
// runs only when asked:
//
//	SWITCHBOARD_BENCH_SEARCH=1 go test -run '^$' -bench Search1M -benchtime 1x -timeout 60m ./switchboard/store/
//
// SWITCHBOARD_BENCH_SEARCH_N sets the number of messages (default 1000000);
// SWITCHBOARD_BENCH_SEARCH_DIR keeps the store there between runs (it is
// filled, then compacted, when the directory is empty);
// SWITCHBOARD_BENCH_SEARCH_WAIT_DROP=1 waits for the deletion of index
// version 1's keys (a store written before it) before the queries;
// SWITCHBOARD_BENCH_SEARCH_BUILD=1 times the index's build at open (it
// writes every index key again), SWITCHBOARD_BENCH_SEARCH_COMPACT=1
// compacts the store before the queries.
const (
	benchConvs = 50000 // conversations: 20 messages each on average
	benchVocab = 5000  // distinct words, Zipf-distributed
)

// benchWord is the word of rank r: pronounceable, different for each rank.
func benchWord(r int) string {
	syl := []string{"ka", "mo", "ri", "te", "su", "na", "lo", "pe", "vi", "da", "ge", "zu", "ba", "ci", "ho", "fy"}
	var b strings.Builder
	for r++; r > 0; r /= len(syl) {
		b.WriteString(syl[r%len(syl)])
	}
	return b.String()
}

// fillSearchStore writes n messages through ApplyLog, 2,000 per write:
// 60 % inbound, 40 % replies, 4 to 20 Zipf-distributed words each, times
// one to three seconds apart.
func fillSearchStore(b *testing.B, s *Store, n int) {
	start := time.Now()
	fillMessages(b, s, n)
	b.Logf("stored %d messages in %v (%.0f/s); compacting", n, time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())
	if err := s.db.view(func(db *leveldb.DB) error { return db.CompactRange(util.Range{}) }); err != nil {
		b.Fatal(err)
	}
}

// fillMessages writes the n messages of fillSearchStore.
func fillMessages(b *testing.B, s *Store, n int) { fillMessagesFrom(b, s, 0, n) }

// fillMessagesFrom writes them as messages from+1 to from+n (ids, sids and
// log positions), so that a store filled by it can take more.
func fillMessagesFrom(b *testing.B, s *Store, from, n int) {
	rng := rand.New(rand.NewPCG(7, 11))
	zipf := rand.NewZipf(rng, 1.1, 2, benchVocab-1)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	start := time.Now()
	items := make([]LogItem, 0, 2000)
	for i := 0; i < n; {
		items = items[:0]
		for ; len(items) < cap(items) && i < n; i++ {
			at = at.Add(time.Second + time.Duration(rng.IntN(2000))*time.Millisecond)
			words := make([]string, 4+rng.IntN(17))
			for j := range words {
				words[j] = benchWord(int(zipf.Uint64()))
			}
			words[0] = strings.ToUpper(words[0][:1]) + words[0][1:]
			text := strings.Join(words, " ") + "."
			phone := "+1555" + strconv.Itoa(1000000+rng.IntN(benchConvs))
			k := from + i
			pos := int64(k + 1)
			if rng.IntN(5) < 2 {
				items = append(items, LogItem{Reply: &Reply{ID: fmt.Sprintf("r%08d", k), Phone: phone, Agent: "agent" + strconv.Itoa(rng.IntN(50)),
					Ref: strconv.Itoa(k), Text: text, Sent: at, LogPos: pos}})
			} else {
				items = append(items, LogItem{Inbound: &Inbound{ID: fmt.Sprintf("i%08d", k), Sid: "SM" + strconv.Itoa(k), Phone: phone,
					Text: text, Received: at, LogPos: pos}})
			}
		}
		res, err := s.ApplyLog(WithoutSync(ctx), items)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		if i%100000 == 0 { // to the terminal now: b.Logf shows only at the end
			fmt.Fprintf(os.Stderr, "stored %d messages in %v\n", i, time.Since(start).Round(time.Second))
		}
	}
}

// benchQuery is one kind of query of the mix.
type benchQuery struct {
	kind string
	make func(rng *rand.Rand) string
}

var benchQueries = []benchQuery{
	{"1 common word (rank < 10)", func(r *rand.Rand) string { return benchWord(1 + r.IntN(9)) }},
	{"1 mid word (rank 100-500)", func(r *rand.Rand) string { return benchWord(100 + r.IntN(400)) }},
	{"1 rare word (rank 3000-5000)", func(r *rand.Rand) string { return benchWord(3000 + r.IntN(2000)) }},
	{"common + mid", func(r *rand.Rand) string { return benchWord(1+r.IntN(9)) + " " + benchWord(100+r.IntN(400)) }},
	{"2 mid words", func(r *rand.Rand) string { return benchWord(100+r.IntN(400)) + " " + benchWord(100+r.IntN(400)) }},
	{"3 words", func(r *rand.Rand) string {
		return benchWord(1+r.IntN(9)) + " " + benchWord(10+r.IntN(90)) + " " + benchWord(100+r.IntN(400))
	}},
	{"absent word + common", func(r *rand.Rand) string { return "zzzz " + benchWord(1+r.IntN(9)) }},
}

func BenchmarkSearch1M(b *testing.B) {
	if os.Getenv("SWITCHBOARD_BENCH_SEARCH") == "" {
		b.Skip("set SWITCHBOARD_BENCH_SEARCH=1 to build a 1,000,000-message store and search it")
	}
	n := 1000000
	if v := os.Getenv("SWITCHBOARD_BENCH_SEARCH_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	dir := os.Getenv("SWITCHBOARD_BENCH_SEARCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	entries, _ := os.ReadDir(dir)
	// Info logs on stderr: an index built or deleted at open says how long it took.
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if len(entries) == 0 {
		fillSearchStore(b, s, n)
	}
	if os.Getenv("SWITCHBOARD_BENCH_SEARCH_WAIT_DROP") != "" { // a store of index version 1: wait for its fc/ keys to go
		start := time.Now()
		s.bg.Wait()
		fmt.Fprintf(os.Stderr, "index version 1 keys deleted and compacted in %v\n", time.Since(start).Round(time.Millisecond))
	}
	if os.Getenv("SWITCHBOARD_BENCH_SEARCH_BUILD") != "" {
		s = timeIndexBuild(b, s, dir)
	}
	if os.Getenv("SWITCHBOARD_BENCH_SEARCH_COMPACT") != "" {
		start := time.Now()
		if err := s.db.view(func(db *leveldb.DB) error { return db.CompactRange(util.Range{}) }); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "compacted in %v\n", time.Since(start).Round(time.Second))
	}
	defer s.Close()
	reportCost(b, s, dir)

	rng := rand.New(rand.NewPCG(3, 5))
	b.Run("index", func(b *testing.B) {
		for range b.N {
			searchMix(b, rng, 1000, func(q, before string) (int, string, error) {
				list, _, err := s.Search(q, before, 0)
				return len(list), lastID(list), err
			})
		}
	})
	phones := func() []string {
		var p []string
		for range 3 {
			p = append(p, "+1555"+strconv.Itoa(1000000+rng.IntN(benchConvs)))
		}
		return p
	}
	b.Run("index-3-conversations", func(b *testing.B) {
		for range b.N {
			searchMix(b, rng, 1000, func(q, before string) (int, string, error) {
				list, _, err := s.SearchIn(phones(), q, "", 0)
				return len(list), lastID(list), err
			})
		}
	})
	b.Run("index-1-conversation", func(b *testing.B) { // GET /search with a phone
		for range b.N {
			searchMix(b, rng, 1000, func(q, before string) (int, string, error) {
				list, _, err := s.SearchIn(phones()[:1], q, "", 0)
				return len(list), lastID(list), err
			})
		}
	})
	b.Run("scan", func(b *testing.B) {
		for range b.N {
			searchMix(b, rng, len(benchQueries), func(q, before string) (int, string, error) {
				list, err := scanSearch(s, q, nil)
				return min(len(list), DefaultSearchPage), "", err
			})
		}
	})
}

func lastID(list []messageT) string {
	if len(list) == 0 {
		return ""
	}
	return list[len(list)-1].ID
}

// searchMix runs count queries cycling through benchQueries, every second
// one of the index queries asking for the next page of the one before, and
// reports the latency percentiles over all of them and per kind.
func searchMix(b *testing.B, rng *rand.Rand, count int, search func(q, before string) (found int, last string, err error)) {
	all := make([]time.Duration, 0, count)
	byKind := make(map[string][]time.Duration)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	results := 0
	for i := range count {
		bq := benchQueries[i%len(benchQueries)]
		q := bq.make(rng)
		t0 := time.Now()
		found, last, err := search(q, "")
		if err == nil && last != "" && i%2 == 1 {
			found, _, err = search(q, last) // page 2
		}
		d := time.Since(t0)
		if err != nil {
			b.Fatalf("%q: %v", q, err)
		}
		results += found
		all = append(all, d)
		byKind[bq.kind] = append(byKind[bq.kind], d)
	}
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(pct(all, 50), "p50-ms")
	b.ReportMetric(pct(all, 99), "p99-ms")
	b.ReportMetric(pct(all, 100), "max-ms")
	b.ReportMetric(float64(results)/float64(count), "results/query")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(count)/1024, "KiB-alloc/query")
	b.ReportMetric(0, "ns/op")
	for _, bq := range benchQueries {
		d := byKind[bq.kind]
		b.Logf("%-30s n=%4d p50 %7.2f ms  p99 %7.2f ms", bq.kind, len(d), pct(d, 50), pct(d, 99))
	}
}

// pct is the nearest-rank percentile of ds, in milliseconds.
func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	i := max((len(s)*p+99)/100-1, 0)
	return float64(s[i]) / float64(time.Millisecond)
}

// reportCost logs what the index costs on disk (LevelDB's estimate of the
// key ranges, after compaction) and in memory.
func reportCost(b *testing.B, s *Store, dir string) {
	ranges := []util.Range{*util.BytesPrefix([]byte(pMsg)), *util.BytesPrefix([]byte(pWord)), *util.BytesPrefix([]byte(pConvWord))}
	var sizes leveldb.Sizes
	if err := s.db.view(func(db *leveldb.DB) (err error) {
		sizes, err = db.SizeOf(ranges)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	var total int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	fmt.Fprintf(os.Stderr, "disk: directory %.0f MiB; message records (m/) %.0f MiB, index fw/ %.0f MiB, index fc/ %.0f MiB; heap in use %.1f MiB",
		mib(total), mib(sizes[0]), mib(sizes[1]), mib(sizes[2]), mib(int64(ms.HeapInuse)))
	fmt.Fprintln(os.Stderr)
}

// timeIndexBuild measures the one-time build of the index at Open: it
// removes the marker (the build writes every key again, as for a store
// written before the index existed) and reopens the store.
func timeIndexBuild(b *testing.B, s *Store, dir string) *Store {
	if err := s.db.view(func(db *leveldb.DB) error { return db.Delete([]byte(keySearch), nil) }); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "index built at open in %v\n", time.Since(start).Round(time.Millisecond))
	return s
}

// BenchmarkIndexWriteCost is what indexing costs a write: the same 20,000
// messages (the 1M benchmark's texts, 2,000 per ApplyLog, not synced) into a
// fresh store with and without the search index.
func BenchmarkIndexWriteCost(b *testing.B) {
	for _, tc := range []struct {
		name    string
		noIndex bool
	}{{"with-index", false}, {"without-index", true}} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				s, err := Open(Options{Dir: b.TempDir(), noSearchIndex: tc.noIndex})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				fillMessages(b, s, 20000)
				b.ReportMetric(20000/time.Since(start).Seconds(), "msgs/s")
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSearchOneConversation compares the two ways of searching one
// conversation (searchconv.go) on a compacted store of 100,000 messages
// (the 1M benchmark's texts) of which one conversation holds 20,000 and
// the others about 20 each: a common word (rank 1, in about half of the
// messages) and a rare one (rank 3,000). A scan reads the whole
// conversation; the lists walk the whole list when the conversation holds
// fewer than a page of matches (the short one). It is what scanKeyBytes is
// set from: the cost of a record scanned against a byte of list walked.
func BenchmarkSearchOneConversation(b *testing.B) {
	const total, long = 100000, 20000
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 11))
	zipf := rand.NewZipf(rng, 1.1, 2, benchVocab-1)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	longPhone, shortPhone := "+15550000001", "+15551000007"
	for i := 0; i < total; {
		items := make([]LogItem, 0, 2000)
		for ; len(items) < cap(items) && i < total; i++ {
			at = at.Add(time.Second)
			words := make([]string, 4+rng.IntN(17))
			for j := range words {
				words[j] = benchWord(int(zipf.Uint64()))
			}
			phone := "+1555" + strconv.Itoa(1000000+rng.IntN(4000))
			if i%5 == 0 {
				phone = longPhone
			}
			items = append(items, LogItem{Inbound: &Inbound{ID: fmt.Sprintf("i%08d", i), Sid: "SM" + strconv.Itoa(i), Phone: phone,
				Text: strings.Join(words, " "), Received: at, LogPos: int64(i + 1)}})
		}
		if _, err := s.ApplyLog(WithoutSync(context.Background()), items); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.db.view(func(db *leveldb.DB) error { return db.CompactRange(util.Range{}) }); err != nil {
		b.Fatal(err)
	}
	var sizes leveldb.Sizes
	_ = s.db.view(func(db *leveldb.DB) (err error) {
		sizes, err = listSizes(db, wordPrefixes([]string{benchWord(1)}))
		return err
	})
	b.Logf("list of %q: %d bytes on disk", benchWord(1), sizes[0])
	for _, conv := range []struct{ name, phone string }{{"long", longPhone}, {"short", shortPhone}} {
		for _, q := range []struct{ name, q string }{{"common", benchWord(1)}, {"rare", benchWord(3000)}} {
			for _, m := range []struct {
				name string
				mode convMode
			}{{"scan", convScan}, {"lists", convLists}, {"auto", convAuto}} {
				b.Run(conv.name+"/"+q.name+"/"+m.name, func(b *testing.B) {
					s.opts.convMode = m.mode
					for range b.N {
						if _, _, err := s.SearchIn([]string{conv.phone}, q.q, "", 0); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkWriteSteady writes b.N messages (the 1M benchmark's texts, 2,000
// per ApplyLog, not synced) into one store, so that with -benchtime
// 200000x the memtable is flushed and the tables compacted many times, as
// in a node that has run a while: the writer's CPU and LevelDB's
// compactions together (run it under /usr/bin/time for the CPU and RSS).
//
// SWITCHBOARD_BENCH_WRITE_DIR writes into that store instead of a new one,
// after its first 1,000,000 messages (a copy of the 1M benchmark's store:
// compactions then rewrite its levels too, as in a node with a long history).
func BenchmarkWriteSteady(b *testing.B) {
	dir, from := os.Getenv("SWITCHBOARD_BENCH_WRITE_DIR"), 1000000
	if dir == "" {
		dir, from = b.TempDir(), 0
	}
	s, err := Open(Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	fillMessagesFrom(b, s, from, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}
