package monitor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/udpstats"
)

// TestNoDataHint: listening where nothing arrives says why (the nodes send
// on lo unless told otherwise), on stderr and under the table; -once
// -timeout says it in its error. Once datagrams arrive the hint goes.
func TestNoDataHint(t *testing.T) {
	requireMulticastLo(t)
	group := testGroup(t) // nobody sends here
	var logs bytes.Buffer // slog's handler serializes writes; read after Run returned
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := Config{Group: group, Iface: "lo", Prefix: udpstats.DefaultPrefix, Columns: []string{"agents"},
		Interval: 50 * time.Millisecond, HintAfter: 100 * time.Millisecond}
	want := "nothing arrived on interface lo from group " + group + ": nodes send on their SWITCHBOARD_STATS_IFACE (default lo"

	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if err := Run(ctx, cfg, &out, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), want) || !strings.Contains(logs.String(), "nothing arrived on interface lo") {
		t.Errorf("no hint after 100ms of silence:\ntable:\n%s\nlog:\n%s", out.String(), logs.String())
	}

	once := cfg
	once.Once, once.Timeout = true, 200*time.Millisecond
	err := Run(context.Background(), once, &out, log)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), want) {
		t.Errorf("-once -timeout with nothing arriving: %v", err)
	}

	// A node on the group: the hint never shows.
	e := udpstats.NewEmitter(udpstats.Options{Group: group, Node: "n1", ZeroTTL: true, Logger: quiet()})
	e.Gauge("agents").Set(1)
	emitEvery(t, e, 20*time.Millisecond)
	out.Reset()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel2()
	if err := Run(ctx2, cfg, &out, quiet()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "nothing arrived") || !strings.Contains(out.String(), "n1") {
		t.Errorf("with a node sending:\n%s", out.String())
	}
}
