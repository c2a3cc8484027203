// Command sbload drives switchboard nodes with realistic traffic and
// reports throughput, latency percentiles and end-to-end accounting; with
// -demo it plays a calm stream of customers for a person watching the agent
// client; with -baseline it measures the raw figures BENCHMARKS.md compares
// against.
//
//	sbload -target http://127.0.0.1:8080 -rate 500 -duration 10s -agents 20
//	sbload -demo
//	sbload -baseline http|amqp|leveldb
//
// Exit status: 0 when nothing was lost or sent twice, 1 when something was,
// 2 when the run could not start.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/switchboard/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// listFlag is a repeatable, comma-separated flag.
type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l.v = append(*l.v, p)
		}
	}
	return nil
}

func isDemo(args []string) bool {
	for _, a := range args {
		switch strings.TrimLeft(a, "-") {
		case "demo", "demo=true", "demo=1":
			return true
		}
	}
	return false
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	opts := loadgen.NewOptions()
	if isDemo(args) {
		opts = loadgen.DemoOptions()
	}
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	opts.Secret = getenv("SWITCHBOARD_SECRET")
	opts.AuthToken = getenv("TWILIO_AUTH_TOKEN")
	opts.AccountSID = env("TWILIO_ACCOUNT_SID", opts.AccountSID)
	opts.From = env("TWILIO_FROM", opts.From)
	opts.PublicURL = getenv("SWITCHBOARD_PUBLIC_URL")
	opts.AdminToken = getenv("SWITCHBOARD_ADMIN_TOKEN")
	if u, err := url.Parse(getenv("TWILIO_API_URL")); err == nil && isLoopback(u.Hostname()) {
		// The nodes send replies there: that is where the fake listens. A
		// real API URL is not ours to listen on.
		opts.TwilioAddr = u.Host
	}

	fs := flag.NewFlagSet("sbload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var targets []string
	var pidList []string
	fs.Var(listFlag{&targets}, "target", "node base URL; repeat or comma-separate for several nodes (default http://127.0.0.1:8080, env SBLOAD_TARGET)")
	fs.StringVar(&opts.PublicURL, "public-url", opts.PublicURL, "URL webhooks are signed for (the nodes' -public-url; env SWITCHBOARD_PUBLIC_URL); empty = each target's URL")
	fs.StringVar(&opts.Secret, "secret", opts.Secret, "the nodes' SWITCHBOARD_SECRET, to sign the simulated agents' tokens")
	fs.StringVar(&opts.AuthToken, "auth-token", opts.AuthToken, "Twilio auth token the nodes check signatures with (env TWILIO_AUTH_TOKEN); empty = unsigned")
	fs.StringVar(&opts.AccountSID, "account-sid", opts.AccountSID, "Twilio account SID of the nodes (env TWILIO_ACCOUNT_SID)")
	fs.StringVar(&opts.From, "from", opts.From, "the switchboard's number, the To of inbound SMS (env TWILIO_FROM)")
	fs.StringVar(&opts.AdminToken, "admin-token", opts.AdminToken, "admin token: the report then says whether each lost message was stored (env SWITCHBOARD_ADMIN_TOKEN)")
	fs.StringVar(&opts.TwilioAddr, "twilio-addr", opts.TwilioAddr, "listen address of the fake Twilio API; the nodes' TWILIO_API_URL must point here (default: the host of TWILIO_API_URL); empty = none")
	rate := fs.String("rate", strconv.FormatFloat(opts.Rate, 'f', -1, 64), "inbound messages per second (open loop), or \"max\" for closed loop")
	fs.DurationVar(&opts.Duration, "duration", opts.Duration, "how long to send (0 = until interrupted)")
	fs.DurationVar(&opts.Drain, "drain", opts.Drain, "after sending, how long to wait for deliveries and replies")
	fs.IntVar(&opts.Customers, "customers", opts.Customers, "distinct customer phone numbers")
	fs.IntVar(&opts.Workers, "workers", opts.Workers, "concurrent webhook requests at most")
	fs.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "per request")
	fs.Float64Var(&opts.DupShare, "dup", opts.DupShare, "share of webhooks delivered twice (Twilio retries)")
	fs.Float64Var(&opts.BurstShare, "burst", opts.BurstShare, "share of messages that start a burst from one number")
	fs.IntVar(&opts.BurstSize, "burst-size", opts.BurstSize, "messages per burst")
	fs.IntVar(&opts.Agents, "agents", opts.Agents, "simulated agents over WebSocket")
	fs.IntVar(&opts.Capacity, "capacity", opts.Capacity, "conversations per simulated agent")
	fs.DurationVar(&opts.Think, "think", opts.Think, "agent think time before a reply (±50%)")
	fs.Float64Var(&opts.ReplyShare, "reply", opts.ReplyShare, "share of new messages an agent answers")
	fs.Float64Var(&opts.ReleaseShare, "release", opts.ReleaseShare, "share of acknowledged replies after which the agent releases the conversation")
	fs.Float64Var(&opts.NavRate, "nav-rate", opts.NavRate, "navigation events per second")
	fs.Float64Var(&opts.NavLinkShare, "nav-link", opts.NavLinkShare, "share of shop users linked to a texting customer")
	fs.BoolVar(&opts.Demo, "demo", opts.Demo, "a calm, lively stream of six named customers (the same numbers every run, +1 415 555 0101 and up) for a person watching the agent client")
	fs.BoolVar(&opts.DemoAgent, "demo-agent", opts.DemoAgent, "in -demo, also run one simulated agent")
	fs.Var(listFlag{&pidList}, "pid", "node process id(s) whose RSS is sampled before and after the agents connect (Linux)")
	var cpuPIDList []string
	fs.Var(listFlag{&cpuPIDList}, "cpu-pid", "process id(s) (nodes, the broker) whose CPU use over the send phase is reported beside sbload's own, in % of a core and in µs per message delivered in that phase (Linux)")
	fs.DurationVar(&opts.Idle, "idle", opts.Idle, "with -pid: how long the connected agents idle before RSS is sampled")
	seed := fs.Uint64("seed", 0, "random seed (0 = from the clock)")
	fs.StringVar(&opts.RunID, "run-id", "", "1 to 6 digits naming this run's agents and phones (default random)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no live progress line")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of sbload itself to this file (is the generator the bottleneck?)")
	baseline := fs.String("baseline", "", "measure a raw baseline instead: http (trivial Go handler, driven like a node), amqp (amqp091-go publish-with-confirms → consume), amqp-stream (the same through a RabbitMQ stream, the kind of queue cluster mode's log is), amqp-cluster (a cluster log's broker path without the nodes: topic exchange, mandatory, stream, one consumer per node), http-amqp (an HTTP handler that only publishes each webhook along that path and answers once confirmed, driven like a node), leveldb (synced appends)")
	consumers := fs.Int("consumers", 2, "with -baseline amqp-cluster or http-amqp: stream consumers, one per node")
	amqpURL := fs.String("amqp", env("SWITCHBOARD_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"), "broker for -baseline amqp")
	writers := fs.Int("writers", 1, "concurrent writers for -baseline leveldb")
	dir := fs.String("dir", os.TempDir(), "directory for -baseline leveldb")
	verbose := fs.Bool("v", false, "log warnings of the run to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sbload: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if len(targets) == 0 {
		targets = strings.Split(env("SBLOAD_TARGET", "http://127.0.0.1:8080"), ",")
	}
	opts.Targets = targets
	opts.Seed = *seed
	if *rate == "max" {
		opts.MaxRate = true
		opts.Rate = 0
	} else if f, err := strconv.ParseFloat(*rate, 64); err == nil {
		opts.Rate = f
	} else {
		fmt.Fprintf(stderr, "sbload: -rate: %q is not a number or \"max\"\n", *rate)
		return 2
	}
	for _, l := range []struct {
		flag string
		list []string
		to   *[]int
	}{{"pid", pidList, &opts.PIDs}, {"cpu-pid", cpuPIDList, &opts.CPUPIDs}} {
		for _, p := range l.list {
			pid, err := strconv.Atoi(p)
			if err != nil || pid <= 0 {
				fmt.Fprintf(stderr, "sbload: -%s: %q is not a process id\n", l.flag, p)
				return 2
			}
			*l.to = append(*l.to, pid)
		}
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelWarn
	}
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if !*quiet {
		opts.Progress = stderr
		opts.ProgressTTY = isTerminal(stderr)
	}
	if opts.Demo {
		opts.Progress = stdout // the demo's story is its output
		opts.ProgressTTY = false
	}

	var forwarder *loadgen.Forwarder
	switch *baseline {
	case "":
	case "http":
		u, stop, err := loadgen.TrivialServer()
		if err != nil {
			fmt.Fprintln(stderr, "sbload:", err)
			return 2
		}
		defer stop()
		opts.Targets, opts.PublicURL, opts.Agents, opts.TwilioAddr, opts.NavRate = []string{u}, "", 0, "", 0
	case "http-amqp":
		fw, err := loadgen.StartForwarder(*amqpURL, "", *consumers)
		if err != nil {
			fmt.Fprintln(stderr, "sbload:", err)
			return 2
		}
		defer fw.Close()
		forwarder = fw
		opts.Targets, opts.PublicURL, opts.Agents, opts.TwilioAddr, opts.NavRate = []string{fw.URL}, "", 0, "", 0
	case "amqp", "amqp-stream", "amqp-cluster":
		b, err := loadgen.BaselineAMQP(ctx, loadgen.AMQPBaselineOptions{URL: *amqpURL, Duration: opts.Duration,
			Stream: *baseline == "amqp-stream", Cluster: *baseline == "amqp-cluster", Consumers: *consumers})
		return printBaseline(b, err, *asJSON, stdout, stderr)
	case "leveldb":
		b, err := loadgen.BaselineLevelDB(ctx, *dir, *writers, opts.Duration)
		return printBaseline(b, err, *asJSON, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "sbload: -baseline: %q is not http, http-amqp, amqp, amqp-stream, amqp-cluster or leveldb\n", *baseline)
		return 2
	}

	r, err := loadgen.New(opts)
	if err != nil {
		fmt.Fprintln(stderr, "sbload:", err)
		return 2
	}
	if opts.Demo {
		fmt.Fprintf(stderr, "sbload demo: Ctrl-C to stop. Replies from the agent client are shown when the node's TWILIO_API_URL points at %s.\n", "http://"+r.Options().TwilioAddr)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "sbload: -cpuprofile:", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	rep, err := r.Run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "sbload:", err)
		return 2
	}
	if forwarder != nil {
		// Every acknowledged webhook must have reached every consumer.
		wait, cancel := context.WithTimeout(ctx, 30*time.Second)
		got := forwarder.WaitConsumed(wait, rep.Inbound.Acked)
		cancel()
		if _, returned := forwarder.Consumed(); got < rep.Inbound.Acked || returned > 0 {
			rep.Failures = append(rep.Failures, fmt.Sprintf("forwarder: %d acknowledged webhooks, the slowest of %d consumers read %d; %d returned unroutable", rep.Inbound.Acked, *consumers, got, returned))
		}
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "sbload:", err)
		return 2
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

func printBaseline(b *loadgen.Baseline, err error, asJSON bool, stdout, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintln(stderr, "sbload:", err)
		return 2
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(b)
	} else {
		err = b.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "sbload:", err)
		return 2
	}
	return 0
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
