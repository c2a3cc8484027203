package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkImportState: importing the exported state of a store of
// SWITCHBOARD_IMPORT_EVENTS (default 200,000) inbound messages in 2,000
// conversations into an empty store, up to and including one synced write
// (what a node joining from a snapshot does before its checkpoint). The
// messages are those of switchboard's BenchmarkJoin.
func BenchmarkImportState(b *testing.B) {
	events := 200000
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_IMPORT_EVENTS")); err == nil && v > 0 {
		events = v
	}
	kvs, gseq := benchState(b, events)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst := benchOpen(b)
		b.StartTimer()
		t0, c0 := time.Now(), cpuTime()
		if err := dst.ImportState(WithoutSync(context.Background()), kvs, gseq); err != nil {
			b.Fatal(err)
		}
		if err := dst.SaveCheckpoint(context.Background(), nil, []byte("{}")); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "s/import")
		b.ReportMetric((cpuTime() - c0).Seconds(), "cpu-s/import")
		b.StopTimer()
		if err := dst.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(len(kvs)), "keys")
}

// benchState stores events inbound messages in a new store and returns its
// exported state.
func benchState(b testing.TB, events int) ([]KV, uint64) {
	b.Helper()
	cache := os.Getenv("SWITCHBOARD_IMPORT_CACHE") // a file to keep the state in between runs
	if cache != "" {
		if kvs, gseq, err := readKVs(cache); err == nil {
			return kvs, gseq
		}
	}
	src, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	ctx := WithoutSync(context.Background())
	const writers = 32
	errs := make([]error, writers)
	parallel(writers, func(w int) {
		for i := w; i < events && errs[w] == nil; i += writers {
			in := Inbound{Sid: fmt.Sprintf("SMbench%08d", i), ID: fmt.Sprintf("bench-%08d", i), Phone: fmt.Sprintf("+1555880%04d", i%2000), Text: fmt.Sprintf("message %d about my order", i), Received: time.UnixMilli(int64(1700000000000 + i))}
			_, _, errs[w] = src.AppendInbound(ctx, in)
		}
	})
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	kvs, gseq := exportKVs(b, src)
	if cache != "" {
		if err := writeKVs(cache, kvs, gseq); err != nil {
			b.Fatal(err)
		}
	}
	return kvs, gseq
}

// writeKVs and readKVs keep an exported state in a file: gseq, then each
// key and value after its length (uvarints).
func writeKVs(path string, kvs []KV, gseq uint64) error {
	buf := binary.AppendUvarint(nil, gseq)
	for _, kv := range kvs {
		buf = append(binary.AppendUvarint(buf, uint64(len(kv.Key))), kv.Key...)
		buf = append(binary.AppendUvarint(buf, uint64(len(kv.Value))), kv.Value...)
	}
	return os.WriteFile(path, buf, 0o600)
}

func readKVs(path string) ([]KV, uint64, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(buf)
		if n <= 0 {
			return 0, false
		}
		buf = buf[n:]
		return v, true
	}
	gseq, _ := next()
	var kvs []KV
	for len(buf) > 0 {
		var kv KV
		for _, p := range []*[]byte{&kv.Key, &kv.Value} {
			l, ok := next()
			if !ok || l > uint64(len(buf)) {
				return nil, 0, fmt.Errorf("%s: truncated", path)
			}
			*p, buf = buf[:l:l], buf[l:]
		}
		kvs = append(kvs, kv)
	}
	return kvs, gseq, nil
}

func benchOpen(b *testing.B) *Store {
	b.Helper()
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// cpuTime is the CPU time the process has used (user and system): on a
// shared machine, a steadier measure of work than the time elapsed.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
