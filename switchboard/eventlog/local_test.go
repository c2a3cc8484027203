package eventlog_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/switchboard/switchboard/switchboard/eventlog"
	"github.com/switchboard/switchboard/switchboard/eventlog/logtest"
	"github.com/switchboard/switchboard/switchboard/store"
)

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestLocalConformance(t *testing.T) {
	logtest.Run(t, func(t *testing.T) eventlog.Log {
		st := openStore(t, t.TempDir())
		t.Cleanup(func() { st.Close() })
		return eventlog.NewLocal(st)
	})
}

// A trimmed local log keeps its offsets across a restart: the next entry
// never reuses one, and the head moves on.
func TestLocalTrimKeepsOffsets(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	l := eventlog.NewLocal(st)
	ctx := context.Background()
	for _, k := range []string{"t.a", "t.b", "t.c"} {
		if err := l.Append(ctx, k, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Trim(ctx, 3); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openStore(t, dir)
	defer st.Close()
	l = eventlog.NewLocal(st)
	if err := l.Append(ctx, "t.d", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	h, err := l.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Offset != 3 || h.Key != "t.d" {
		t.Fatalf("head after trim and restart = %d %s, want 3 t.d", h.Offset, h.Key)
	}
}
