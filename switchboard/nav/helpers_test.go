package nav

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/switchboard/store"
)

// goleveldb's mpoolDrain outlives DB.Close by up to a second (it stops on
// its own ticker); it is not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

// t0 is the fake clock's start: 2024-11-21 14:40:00 UTC.
var t0 = time.UnixMilli(1732200000000).UTC()

// clock is a settable fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// recorder is a Publisher that remembers what was published.
type recorder struct {
	mu   sync.Mutex
	msgs []message
	err  error
}

func (r *recorder) Publish(_ context.Context, key string, body []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.msgs = append(r.msgs, message{key, append([]byte(nil), body...)})
	return nil
}

func (r *recorder) take() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.msgs
	r.msgs = nil
	return m
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	return st
}

// testOptions: node n1, a 5 s window at 1 s, the sample catalog, a fake
// clock and counter ids.
func testOptions(c *clock) Options {
	o := NewOptions()
	o.Node = "n1"
	o.Window = 5 * time.Second
	o.Resolution = time.Second
	o.TopN = 3
	o.Now = c.Now
	o.PublishConcurrency = 1 // keep batches in order
	o.Logger = quietLogger()
	var mu sync.Mutex
	n := 0
	o.NewID = func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("e%d", n)
	}
	return o
}

// newService opens a service on a fresh store closed at cleanup.
func newService(t testing.TB, opts Options, pub Publisher) (*Service, *store.Store) {
	t.Helper()
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	s, err := New(opts, st, pub)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, st
}

// view is a PRODUCT event owned by node n1.
func view(user, product string) Event {
	return Event{User: user, Product: product, Type: TypeProduct, Node: "n1"}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// startPlain serves h on loopback until the benchmark or test ends.
func startPlain(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
