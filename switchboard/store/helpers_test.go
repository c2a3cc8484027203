package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// t0 is the fake clock's start: 2024-11-21 14:40:00 UTC.
var t0 = time.UnixMilli(1732200000000).UTC()

// fakeClock advances one millisecond per call, so times are exact.
type fakeClock struct {
	mu sync.Mutex
	n  int64
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return t0.Add(time.Duration(c.n) * time.Millisecond)
}

// counterIDs makes ids "m0001", "m0002", ... in the order the writer stores
// messages.
func counterIDs(prefix string) func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("%s%04d", prefix, n)
	}
}

func testOptions(t *testing.T) Options {
	t.Helper()
	c := &fakeClock{}
	return Options{Dir: t.TempDir(), Now: c.Now, NewID: counterIDs("m")}
}

func openStore(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func newStore(t *testing.T) *Store {
	t.Helper()
	return openStore(t, testOptions(t))
}

func mustInbound(t *testing.T, s *Store, in Inbound) (msg messageT, dup bool) {
	t.Helper()
	m, dup, err := s.AppendInbound(context.Background(), in)
	if err != nil {
		t.Fatalf("AppendInbound(%+v): %v", in, err)
	}
	return m, dup
}

func mustReply(t *testing.T, s *Store, r Reply) (msg messageT, dup bool) {
	t.Helper()
	m, dup, err := s.AppendReply(context.Background(), r)
	if err != nil {
		t.Fatalf("AppendReply(%+v): %v", r, err)
	}
	return m, dup
}

func ids(list []messageT) []string {
	out := make([]string, len(list))
	for i, m := range list {
		out[i] = m.ID
	}
	return out
}

// gate blocks the writer in beforeCommit until released, so tests can queue
// requests behind a batch being written.
type gate struct {
	entered chan int      // receives the batch size each time the writer arrives
	release chan struct{} // one receive lets one commit through
}

func newGate() *gate {
	return &gate{entered: make(chan int, 100), release: make(chan struct{})}
}

func (g *gate) hook(n int) error {
	g.entered <- n
	<-g.release
	return nil
}

type leveldbSnapshot = leveldb.Snapshot

var utilPrefix = util.BytesPrefix

// startChild runs this test binary's test named run in a child process
// with env added, for tests that kill it mid-write. It returns the child,
// its stdout and what it writes on stderr.
func startChild(t *testing.T, run, env string) (*exec.Cmd, io.Reader, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout, &stderr
}

// exportKVs returns s's applied state, as ExportState gives it, copied.
func exportKVs(tb testing.TB, s *Store) ([]KV, uint64) {
	tb.Helper()
	var kvs []KV
	gseq, err := s.ExportState(func(k, v []byte) error {
		kvs = append(kvs, KV{Key: bytes.Clone(k), Value: bytes.Clone(v)})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return kvs, gseq
}
