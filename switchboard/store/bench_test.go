package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// The write benchmarks use explicit goroutines rather than RunParallel: on
// a 2-core machine RunParallel would start only GOMAXPROCS writers, and the
// point is eight concurrent writers sharing fsyncs.
const benchWriters = 8

// benchValue is about the size of a stored inbound record.
var benchValue = []byte(`{"id":"01JD5Z8Q7N3XKJ4M2P6R8T0V1W","d":"in","t":"Hi, is the camcorder still on sale? I'd like two.","r":1732200000000,"fc":"US","to":"+15559999999","sid":"SM0123456789abcdef0123456789abcdef"}`)

// runWriters runs op b.N times spread over writers goroutines and reports
// the rate as msgs/s.
func runWriters(b *testing.B, writers int, op func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > b.N {
					return
				}
				if err := op(i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

func benchAppendInbound(b *testing.B, writers int, noIndex bool) {
	s, err := Open(Options{Dir: b.TempDir(), noSearchIndex: noIndex})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	defer func() {
		st := s.Stats()
		if st.Commits > 0 {
			b.ReportMetric(float64(st.Requests)/float64(st.Commits), "msgs/commit")
		}
	}()
	ctx := context.Background()
	phones := make([]string, 64)
	for i := range phones {
		phones[i] = fmt.Sprintf("+1555400%04d", i)
	}
	text := "Hi, is the camcorder still on sale? I'd like two."
	runWriters(b, writers, func(i int) error {
		_, _, err := s.AppendInbound(ctx, Inbound{
			Sid:   fmt.Sprintf("SM%032d", i),
			Phone: phones[i%len(phones)],
			To:    "+15559999999",
			Text:  text,
		})
		return err
	})
}

// BenchmarkAppendInbound: durable AppendInbound from 8 concurrent writers
// (group commit: one synced write per batch of waiting requests).
func BenchmarkAppendInbound(b *testing.B) { benchAppendInbound(b, benchWriters, false) }

// BenchmarkAppendInboundNoIndex is BenchmarkAppendInbound without the
// search index: what indexing costs the durable path.
func BenchmarkAppendInboundNoIndex(b *testing.B) { benchAppendInbound(b, benchWriters, true) }

// BenchmarkAppendInboundOneWriter: durable AppendInbound from one writer,
// so every message pays a whole fsync.
func BenchmarkAppendInboundOneWriter(b *testing.B) { benchAppendInbound(b, 1, false) }

func openRaw(b *testing.B, o *opt.Options) *leveldb.DB {
	b.Helper()
	db, err := leveldb.OpenFile(b.TempDir(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// BenchmarkBaselineSyncPerWrite: the baseline without group commit. Raw
// goleveldb Put with Sync and NoWriteMerge from 8 goroutines: one fsync per
// write.
func BenchmarkBaselineSyncPerWrite(b *testing.B) {
	db := openRaw(b, &opt.Options{NoWriteMerge: true})
	wo := &opt.WriteOptions{Sync: true, NoWriteMerge: true}
	runWriters(b, benchWriters, func(i int) error {
		return db.Put(binary.BigEndian.AppendUint64([]byte("m/"), uint64(i)), benchValue, wo)
	})
}

// BenchmarkRawLevelDBSyncedAppend: the raw goleveldb synced-append rate, one
// writer appending one key per message with Sync.
func BenchmarkRawLevelDBSyncedAppend(b *testing.B) {
	db := openRaw(b, nil)
	wo := &opt.WriteOptions{Sync: true}
	runWriters(b, 1, func(i int) error {
		return db.Put(binary.BigEndian.AppendUint64([]byte("m/"), uint64(i)), benchValue, wo)
	})
}
