package eventlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/store"
)

func open(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// got collects what one subscription delivers.
type got struct {
	mu sync.Mutex
	es []Entry
}

func subscribeAll(t *testing.T, l *Local, from int64) *got {
	t.Helper()
	g := &got{}
	sub, err := l.Subscribe(context.Background(), from, func(_ context.Context, e Entry) error {
		g.mu.Lock()
		g.es = append(g.es, e)
		g.mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return g
}

func (g *got) wait(t *testing.T, n int) []Entry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		es := append([]Entry(nil), g.es...)
		g.mu.Unlock()
		if len(es) >= n {
			return es
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d entries, want %d", len(es), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// appendMix appends n entries from i on: every other one an inbound
// message stored with it (AppendApplied).
func appendMix(t *testing.T, l *Local, from, n int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < from+n; i++ {
		key, body := fmt.Sprintf("t.%d", i), []byte(fmt.Sprintf(`{"i":%d}`, i))
		if i%2 == 0 {
			if err := l.Append(ctx, key, body); err != nil {
				t.Fatal(err)
			}
			continue
		}
		in := store.Inbound{ID: fmt.Sprintf("m%d", i), Sid: fmt.Sprintf("SM%d", i), Phone: "+15551230001", Text: "hi", Received: time.UnixMilli(1_700_000_000_000)}
		res, err := l.AppendApplied(ctx, key, body, store.LogItem{Inbound: &in}, i)
		if err != nil || !res.Fresh {
			t.Fatalf("AppendApplied %d = %+v, %v", i, res, err)
		}
	}
}

// check compares what a subscription delivered with the store's entries
// from base on, and tells which came from the tail (Applied is set on an
// AppendApplied entry only when handed over from memory).
func check(t *testing.T, st *store.Store, es []Entry, base int64) (fromTail []int64) {
	t.Helper()
	var want []store.LogEntry
	if err := st.ReadLog(base, 0, func(e store.LogEntry) error { want = append(want, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(es) != len(want) {
		t.Fatalf("delivered %d entries, the store has %d", len(es), len(want))
	}
	for i, e := range es {
		w := want[i]
		if e.Offset != w.Offset || e.Key != w.Key || string(e.Body) != string(w.Body) {
			t.Fatalf("entry %d = %d %s %s, the store has %d %s %s", i, e.Offset, e.Key, e.Body, w.Offset, w.Key, w.Body)
		}
		if a := e.Applied; a != nil {
			var n int
			fmt.Sscanf(e.Key, "t.%d", &n)
			if a.Value != n || !a.Result.Fresh || a.Result.Msg.ID != fmt.Sprintf("m%d", n) {
				t.Fatalf("entry %s: applied %+v, want the append's", e.Key, a)
			}
			fromTail = append(fromTail, e.Offset)
		}
	}
	return fromTail
}

// The tail and the store give the same entries: to a subscriber that keeps
// up (all from memory), to one that starts after the tail overflowed (the
// store, then the tail), and after a restart (the store, then the tail).
func TestLocalTailMatchesStore(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	l := newLocal(st, 4)
	live := subscribeAll(t, l, 0)
	appendMix(t, l, 0, 12)
	if tail := check(t, st, live.wait(t, 12), 0); len(tail) == 0 {
		t.Fatal("a subscriber that keeps up got nothing from the tail")
	}

	late := subscribeAll(t, l, 0) // entries 0–7 left the tail of 4
	tail := check(t, st, late.wait(t, 12), 0)
	if fmt.Sprint(tail) != "[9 11]" {
		t.Fatalf("late subscriber got %v from the tail, want [9 11] (0–7 overflowed)", tail)
	}

	// Written to the store, not through this log: read back.
	if _, err := st.AppendLog(context.Background(), "t.12", []byte(`{"i":12}`)); err != nil {
		t.Fatal(err)
	}
	appendMix(t, l, 13, 2)
	check(t, st, live.wait(t, 15), 0)

	// A failed append (an invalid item) appends nothing; the log goes on.
	bad := store.Inbound{ID: "x", Phone: "not a phone"}
	if _, err := l.AppendApplied(context.Background(), "t.bad", []byte(`{}`), store.LogItem{Inbound: &bad}, 0); err == nil {
		t.Fatal("an invalid inbound message was appended")
	}
	appendMix(t, l, 15, 1)
	check(t, st, live.wait(t, 16), 0)
	st.Close()

	st = open(t, dir)
	defer st.Close()
	l = newLocal(st, 4)
	again := subscribeAll(t, l, 2)
	appendMix(t, l, 16, 4)
	tail = check(t, st, again.wait(t, 18), 2)
	if fmt.Sprint(tail) != "[17 19]" {
		t.Fatalf("after a restart %v came from the tail, want [17 19] (the entries appended since)", tail)
	}
}
