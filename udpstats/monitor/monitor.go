package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/udpstats"
)

// Main runs the udpstats command and returns its exit status: 0 done,
// 1 failed (e.g. cannot join the group, -once timed out), 2 bad usage.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := ParseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fail(stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := Run(ctx, cfg, stdout, log); err != nil {
		fail(stderr, err)
		return 1
	}
	return 0
}

// fail prints err with the command's prefix, once: the package's own
// errors already carry it.
func fail(stderr io.Writer, err error) {
	msg := err.Error()
	if !strings.HasPrefix(msg, "udpstats: ") {
		msg = "udpstats: " + msg
	}
	fmt.Fprintln(stderr, msg)
}

// ErrTimeout is returned by Run with Once and Timeout when no full interval
// arrived in time.
var ErrTimeout = errors.New("no full interval received before -timeout")

// Run listens until ctx is done (or, with Once, until the first full
// interval has been shown) and writes the table or JSON lines to out.
//
// With Once, the first complete (not partial) interval from any node starts
// a window of one node interval; every node's first complete interval in
// that window is shown, then Run returns. So a cluster whose nodes emit
// every second appears whole.
func Run(ctx context.Context, cfg Config, out io.Writer, log *slog.Logger) error {
	reports := make(chan udpstats.Report, 4096)
	var dropped atomic.Int64
	l, err := udpstats.Listen(ctx, udpstats.ListenOptions{
		Group:  cfg.Group,
		Iface:  cfg.Iface,
		Logger: log,
		Aggregator: udpstats.AggregatorOptions{
			Prefix:   cfg.Prefix,
			NoPrefix: cfg.NoPrefix,
			Interval: cfg.Interval,
			OnReport: func(r udpstats.Report) {
				select {
				case reports <- r:
				default: // the terminal is slower than the cluster: skip
					dropped.Add(1)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	defer func() {
		_ = l.Close()
		if n := dropped.Load(); n > 0 {
			log.Warn("reports skipped because output was slow", "component", "udpstats", "skipped", n)
		}
	}()
	agg := l.Aggregator()
	table := &Table{Columns: cfg.Columns, ANSI: !cfg.Once}
	enc := json.NewEncoder(out)

	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	hintAfter := cfg.HintAfter
	if hintAfter <= 0 {
		hintAfter = 5 * time.Second
	}
	hintTimer := time.NewTimer(hintAfter)
	defer hintTimer.Stop()
	var timeout <-chan time.Time
	if cfg.Once && cfg.Timeout > 0 {
		t := time.NewTimer(cfg.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var windowEnd <-chan time.Time // Once: set by the first full interval
	shown := map[string]bool{}     // Once: nodes already printed
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.Done():
			if ctx.Err() != nil {
				return nil // the listener stopped because ctx did
			}
			return errors.New("listener stopped")
		case <-timeout:
			if agg.Stats().Datagrams == 0 {
				return fmt.Errorf("%w: %s", ErrTimeout, NoDataHint(cfg))
			}
			return ErrTimeout
		case <-hintTimer.C:
			// Say it once, on stderr, and under the live table until the
			// first datagram arrives.
			if agg.Stats().Datagrams == 0 {
				table.Hint = NoDataHint(cfg)
				log.Warn(table.Hint, "component", "udpstats")
			}
		case r := <-reports:
			if cfg.Once {
				if r.Partial || shown[r.Node] {
					continue
				}
				if windowEnd == nil {
					w := time.NewTimer(max(r.Interval, cfg.Interval))
					defer w.Stop()
					windowEnd, timeout = w.C, nil
				}
				shown[r.Node] = true
			}
			if cfg.JSON {
				if err := enc.Encode(r); err != nil {
					return fmt.Errorf("write: %w", err)
				}
			}
		case <-windowEnd:
			if !cfg.JSON {
				nodes := agg.Nodes()
				keep := nodes[:0]
				for _, n := range nodes {
					if shown[n.Node] {
						keep = append(keep, n)
					}
				}
				table.Render(out, keep, time.Now(), agg.Stats())
			}
			return nil
		case now := <-tick.C:
			if !cfg.JSON && !cfg.Once {
				st := agg.Stats()
				if st.Datagrams > 0 {
					table.Hint = ""
				}
				table.Render(out, agg.Nodes(), now, st)
			}
		}
	}
}

// NoDataHint says why nothing may arrive: the nodes send on their own
// SWITCHBOARD_STATS_IFACE, which is lo (this machine only) unless set, so
// a monitor on another interface, or on another machine, hears nothing.
func NoDataHint(cfg Config) string {
	return fmt.Sprintf("nothing arrived on interface %s from group %s: nodes send on their SWITCHBOARD_STATS_IFACE (default lo, this machine only); "+
		"on a node's machine run udpstats without -iface (lo); across machines set SWITCHBOARD_STATS_IFACE on every node and -iface here to the LAN interface, "+
		"with the same group on both (metrics are off with SWITCHBOARD_STATS_INTERVAL=0)", cfg.Iface, cfg.Group)
}
