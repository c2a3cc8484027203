// Package logtest is the conformance suite every eventlog.Log must pass
// (Run), as package bustest is for the buses.
package logtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/eventlog"
)

// Factory returns a fresh, empty log whose entries may have keys under
// "t.": Append works at once. It registers its own cleanup.
type Factory func(t *testing.T) eventlog.Log

// Run runs the suite against the logs newLog makes.
func Run(t *testing.T, newLog Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, l eventlog.Log)
	}{
		{"OrderAndOffsets", testOrder},
		{"FromOffset", testFromOffset},
		{"LiveAppends", testLive},
		{"ConcurrentAppendsOneOrder", testConcurrent},
		{"RetryKeepsOrder", testRetry},
		{"HeadIdentifiesTheLog", testHead},
		{"CloseStopsDeliveries", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newLog(t)) })
	}
}

const wait = 10 * time.Second

// collector records what a subscription delivers.
type collector struct {
	mu   sync.Mutex
	got  []eventlog.Entry
	fail func(e eventlog.Entry) error // nil: accept everything
}

func (c *collector) handle(_ context.Context, e eventlog.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, e)
	if c.fail != nil {
		return c.fail(e)
	}
	return nil
}

func (c *collector) entries() []eventlog.Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]eventlog.Entry(nil), c.got...)
}

func (c *collector) waitLen(t *testing.T, n int) []eventlog.Entry {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := c.entries()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d entries, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func appendN(t *testing.T, l eventlog.Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(context.Background(), "t."+strconv.Itoa(i), []byte(fmt.Sprintf(`{"i":%d}`, i))); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func subscribe(t *testing.T, l eventlog.Log, from int64, c *collector) eventlog.Subscription {
	t.Helper()
	sub, err := l.Subscribe(context.Background(), from, c.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

func head(t *testing.T, l eventlog.Log) eventlog.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	h, err := l.Head(ctx)
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	return h
}

// checkRun says whether got holds entries t.from... at consecutive offsets
// starting at base.
func checkRun(t *testing.T, got []eventlog.Entry, base int64, from int) {
	t.Helper()
	for i, e := range got {
		want := "t." + strconv.Itoa(from+i)
		if e.Key != want || e.Offset != base+int64(i) || string(e.Body) != fmt.Sprintf(`{"i":%d}`, from+i) {
			t.Fatalf("entry %d = offset %d %s %s, want offset %d %s", i, e.Offset, e.Key, e.Body, base+int64(i), want)
		}
	}
}

func testOrder(t *testing.T, l eventlog.Log) {
	appendN(t, l, 0, 20)
	base := head(t, l).Offset
	var c collector
	subscribe(t, l, base, &c)
	checkRun(t, c.waitLen(t, 20), base, 0)
}

func testFromOffset(t *testing.T, l eventlog.Log) {
	appendN(t, l, 0, 10)
	base := head(t, l).Offset
	var c collector
	subscribe(t, l, base+6, &c)
	appendN(t, l, 10, 2)
	checkRun(t, c.waitLen(t, 6), base+6, 6)
}

func testLive(t *testing.T, l eventlog.Log) {
	var c collector
	subscribe(t, l, 0, &c)
	appendN(t, l, 0, 5)
	got := c.waitLen(t, 5)
	checkRun(t, got, got[0].Offset, 0)
	if h := head(t, l); h.Offset != got[0].Offset {
		t.Fatalf("head at %d, first delivered at %d", h.Offset, got[0].Offset)
	}
}

func testConcurrent(t *testing.T, l eventlog.Log) {
	const writers, each = 8, 25
	var a, b collector
	subscribe(t, l, 0, &a)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := l.Append(context.Background(), fmt.Sprintf("t.w%d", w), []byte(strconv.Itoa(i))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := a.waitLen(t, writers*each)
	subscribe(t, l, got[0].Offset, &b) // a late subscriber sees the same order
	late := b.waitLen(t, writers*each)
	next := map[string]int{}
	for i, e := range got {
		if e.Offset != got[0].Offset+int64(i) {
			t.Fatalf("entry %d at offset %d: offsets not consecutive", i, e.Offset)
		}
		if late[i].Offset != e.Offset || late[i].Key != e.Key || string(late[i].Body) != string(e.Body) {
			t.Fatalf("entry %d: %d %s %s for one subscriber, %d %s %s for another", i, e.Offset, e.Key, e.Body, late[i].Offset, late[i].Key, late[i].Body)
		}
		// One writer's appends keep its order.
		if string(e.Body) != strconv.Itoa(next[e.Key]) {
			t.Fatalf("writer %s: entry %s, want %d", e.Key, e.Body, next[e.Key])
		}
		next[e.Key]++
	}
	if len(got) != writers*each {
		t.Fatalf("%d entries, want %d (each exactly once)", len(got), writers*each)
	}
}

func testRetry(t *testing.T, l eventlog.Log) {
	appendN(t, l, 0, 4)
	base := head(t, l).Offset
	failures := 0
	c := collector{fail: func(e eventlog.Entry) error {
		if e.Key == "t.1" && failures < 2 {
			failures++
			return errors.New("not now")
		}
		return nil
	}}
	subscribe(t, l, base, &c)
	got := c.waitLen(t, 6)
	var keys []string
	for _, e := range got {
		keys = append(keys, e.Key)
	}
	if fmt.Sprint(keys) != "[t.0 t.1 t.1 t.1 t.2 t.3]" {
		t.Fatalf("delivered %v, want t.1 retried in place", keys)
	}
}

func testHead(t *testing.T, l eventlog.Log) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := l.Head(ctx)
	cancel()
	if err == nil {
		t.Fatal("head of an empty log returned an entry")
	}
	done := make(chan eventlog.Entry, 1)
	go func() { done <- head(t, l) }()
	appendN(t, l, 0, 3)
	h := <-done
	if h.Key != "t.0" || string(h.Body) != `{"i":0}` {
		t.Fatalf("head = %s %s, want the first entry", h.Key, h.Body)
	}
	if again := head(t, l); again.Offset != h.Offset || again.Key != h.Key {
		t.Fatalf("head moved from %d to %d without a trim", h.Offset, again.Offset)
	}
}

func testClose(t *testing.T, l eventlog.Log) {
	var c collector
	sub := subscribe(t, l, 0, &c)
	appendN(t, l, 0, 1)
	c.waitLen(t, 1)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1, 3)
	var d collector
	subscribe(t, l, 0, &d)
	d.waitLen(t, 4)
	if n := len(c.entries()); n != 1 {
		t.Fatalf("a closed subscription got %d entries, want 1", n)
	}
}
