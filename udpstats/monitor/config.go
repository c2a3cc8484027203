// Package monitor is the udpstats command: it joins the metrics group and
// shows every node live as an ANSI table, or prints one JSON object per node
// per interval. cmd/udpstats only calls Main.
//
// Concurrency: Run owns one udpstats.Listener (one goroutine) and draws from
// the calling goroutine; everything stops when the context is done.
package monitor

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchboard/switchboard/udpstats"
)

// DefaultColumns are the metrics the table shows, by name without the
// prefix. Counters are shown per second, timings (.p50, .p99...) in ms,
// gauges as they are. A metric a node does not send shows "-".
const DefaultColumns = "sms.in,sms.out.sent,nav.events,route.latency.p50,route.latency.p99,agents.online,conv.waiting"

// Config is the monitor's configuration; ParseConfig fills it from flags
// and the environment.
type Config struct {
	Group    string        // -group
	Iface    string        // -iface
	JSON     bool          // -json: one JSON object per node per interval
	Once     bool          // -once: exit after the first full interval
	Prefix   string        // -prefix: removed from names; "" with NoPrefix
	NoPrefix bool          // -prefix=""
	Columns  []string      // -columns
	Interval time.Duration // -interval: redraw period and assumed node interval
	Timeout  time.Duration // -timeout: with -once, give up after this long (0: never)
	// HintAfter is how long Run waits without a single datagram before it
	// says why that may be (NoDataHint). Zero: 5s. Not a flag.
	HintAfter time.Duration
}

// env names: UDPSTATS_<FLAG>, and for group and interface the node's own
// SWITCHBOARD_STATS_GROUP / SWITCHBOARD_STATS_IFACE as a fallback, so one
// environment file configures a node and the monitor beside it.
var envFallback = map[string]string{
	"group": "SWITCHBOARD_STATS_GROUP",
	"iface": "SWITCHBOARD_STATS_IFACE",
}

// ParseConfig reads flags, then fills every flag not given from the
// environment (UDPSTATS_GROUP, UDPSTATS_IFACE, UDPSTATS_JSON, UDPSTATS_ONCE,
// UDPSTATS_PREFIX, UDPSTATS_COLUMNS, UDPSTATS_INTERVAL, UDPSTATS_TIMEOUT;
// then SWITCHBOARD_STATS_GROUP and SWITCHBOARD_STATS_IFACE). Flags win.
// Errors name the flag.
func ParseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("udpstats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	group := fs.String("group", udpstats.DefaultGroup, "multicast group `ip:port` (env UDPSTATS_GROUP, else SWITCHBOARD_STATS_GROUP)")
	iface := fs.String("iface", udpstats.DefaultIface, "`interface` to join the group on (env UDPSTATS_IFACE, else SWITCHBOARD_STATS_IFACE)")
	jsonOut := fs.Bool("json", false, "print one JSON object per node per interval instead of the table (env UDPSTATS_JSON)")
	once := fs.Bool("once", false, "exit after the first full interval with data (env UDPSTATS_ONCE)")
	prefix := fs.String("prefix", udpstats.DefaultPrefix, "metric name prefix the nodes use (env UDPSTATS_PREFIX)")
	columns := fs.String("columns", DefaultColumns, "comma-separated metrics shown in the table (env UDPSTATS_COLUMNS)")
	interval := fs.Duration("interval", udpstats.DefaultInterval, "redraw period; also the node interval assumed until a node reports its own (env UDPSTATS_INTERVAL)")
	timeout := fs.Duration("timeout", 0, "with -once: exit 1 if no full interval arrived after this long; 0 waits forever (env UDPSTATS_TIMEOUT)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: udpstats [flags]\n\nShows every switchboard node of the metrics group live.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		v := getenv("UDPSTATS_" + strings.ToUpper(f.Name))
		if v == "" && envFallback[f.Name] != "" {
			v = getenv(envFallback[f.Name])
		}
		if v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("-%s from the environment: %q: %w", f.Name, v, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	cfg := Config{
		Group: *group, Iface: *iface, JSON: *jsonOut, Once: *once,
		Prefix: *prefix, NoPrefix: *prefix == "", Interval: *interval, Timeout: *timeout,
	}
	for _, c := range strings.Split(*columns, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cfg.Columns = append(cfg.Columns, c)
		}
	}
	if err := (udpstats.Options{Group: cfg.Group}).Validate(); err != nil {
		return Config{}, fmt.Errorf("-group: %w", errors.Unwrap(err))
	}
	if cfg.Iface == "" {
		return Config{}, errors.New("-iface: empty")
	}
	if cfg.Interval < 10*time.Millisecond {
		return Config{}, fmt.Errorf("-interval: %s is shorter than 10ms", cfg.Interval)
	}
	if cfg.Timeout < 0 {
		return Config{}, fmt.Errorf("-timeout: negative")
	}
	return cfg, nil
}
