package switchboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/bus/amqpbus"
	"github.com/switchboard/switchboard/switchboard/eventlog"
	"github.com/switchboard/switchboard/switchboard/internal/pause"
	"github.com/switchboard/switchboard/switchboard/sms"
	"github.com/switchboard/switchboard/switchboard/sms/twilio"
	"github.com/switchboard/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/udpstats"
)

// Node is one switchboard: HTTP and webhooks, the store, the bus, routing,
// agent sessions and outbound SMS. Start it, then Shutdown it (or use Run).
// Its methods are safe for concurrent use.
type Node struct {
	opts    Options
	log     *slog.Logger // component=node
	logBase *slog.Logger // node=<id>, for components to add their own
	now     func() time.Time
	metrics *nodeMetrics
	flooded penalties // agents refused new connections for a while (limits.go)

	store     *store.Store
	bus       bus.Bus
	sender    sms.Sender
	validator *twilio.Validator
	router    *router
	outbound  *dispatcher
	nav       *navNode // navigation analytics (nav.go)
	early     earlyStatuses
	cluster   *cluster          // the log machinery: accepting, applying, checkpoints
	emitter   *udpstats.Emitter // nil when metrics are off
	live      sync.Map          // *session → struct{}: open agent connections, for the pinger

	srv      *http.Server
	listener net.Listener
	handler  http.Handler

	ctx      context.Context // cancelled at shutdown: stops every goroutine below
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	wgMu     sync.Mutex // goFunc and Shutdown: no wg.Add once wgClosed
	wgClosed bool
	subsMu   sync.Mutex
	subs     []bus.Subscription // closed at shutdown (addSub)
	subsDone bool               // shutdown closed subs: later ones are closed at once
	started  atomic.Bool
	startErr atomic.Pointer[error] // why the last start on the log failed (subscribe), until it succeeds
	stopping atomic.Bool
	stopOnce sync.Once
	stopErr  error
	failOnce sync.Once
	failed   chan error // receives, once, why the node cannot go on (Failed)
}

// Config carries what a node gets from its environment rather than its
// settings. The zero value is fine: defaults are the real clock, slog's
// default logger and no metrics.
type Config struct {
	Logger *slog.Logger
	Now    func() time.Time
	Sender sms.Sender    // overrides the provider chosen from the Twilio settings
	Bus    bus.Bus       // overrides the bus chosen from -amqp (the node closes it)
	NewID  func() string // message ids (store.Options.NewID: safe for concurrent use)
	// Backoff overrides sms.DefaultBackoff for outbound retries (tests).
	Backoff *sms.Backoff
	// Listener, when set, is what Start serves on instead of listening on
	// opts.Addr: the binary listens first, so a taken port is reported
	// before the store is opened. Start owns it from then on.
	Listener net.Listener

	// logCheckEvery overrides how often a cluster node checks that its log
	// is still the one it has applied (tests; 0 = logCheckEvery).
	logCheckEvery time.Duration
	// holeRecheck overrides how often a node stopped at a hole in the log
	// looks for a snapshot past it (tests; 0 = holeRecheck).
	holeRecheck time.Duration
	// logSegmentBytes sets the segment size of a new log stream (tests:
	// retention removes whole segments; 0 = the broker's default).
	logSegmentBytes int64
	// joinFromSnapshot has a node without a checkpoint start from a
	// snapshot even when the log still holds its start (benchmarks: the
	// same log replayed whole and joined from a snapshot).
	joinFromSnapshot bool
}

// New validates opts, opens the store and the bus and builds the node. On
// failure it closes what it opened.
func New(opts Options, cfg Config) (n *Node, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	base := log.With("node", opts.Node)
	n = &Node{opts: opts, log: base.With("component", "node"), logBase: base, now: now, metrics: nopMetrics(), failed: make(chan error, 1), listener: cfg.Listener}

	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	if opts.StatsInterval > 0 {
		n.emitter = udpstats.NewEmitter(n.statsOptions(log))
		n.metrics = emittedMetrics(n.emitter)
		em := n.emitter
		undo = append(undo, func() { em.Close() })
	}

	n.store, err = store.Open(store.Options{Dir: opts.DataDir, Now: now, NewID: cfg.NewID, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", opts.DataDir, err)
	}
	st := n.store // n is nil on the error path: capture what to undo
	undo = append(undo, func() { st.Close() })

	if n.bus, err = openBus(opts, cfg, log); err != nil {
		return nil, err
	}
	b := n.bus
	undo = append(undo, func() { b.Close() })

	n.sender = cfg.Sender
	if n.sender == nil {
		if opts.TwilioAccountSID != "" {
			n.sender, err = twilio.NewSender(twilio.Config{
				AccountSID: opts.TwilioAccountSID, AuthToken: opts.TwilioAuthToken,
				From: opts.TwilioFrom, APIURL: opts.TwilioAPIURL,
			})
			if err != nil {
				return nil, fmt.Errorf("twilio: %w", err)
			}
		} else {
			n.sender = sms.NewConsole(log)
		}
	}
	n.validator = &twilio.Validator{AuthToken: opts.TwilioAuthToken, PublicURL: opts.PublicURL}

	if err := n.openNav(); err != nil {
		return nil, err
	}
	n.router = newRouter(routerDeps{
		capacity: opts.DefaultCapacity, history: opts.HistoryOnAssign,
		grace: opts.Grace, answerTimeout: opts.AnswerTimeout,
		now: n.now, metrics: n.metrics, store: n.store, announce: n.publishAsync,
	}, n.logBase.With("component", "router"))
	// The one place where a node alone and a node among others differ:
	// the log it runs on (doc.go).
	var elog eventlog.Log
	var local *eventlog.Local
	if opts.AMQPURL == "" {
		local = eventlog.NewLocal(n.store)
		elog = local
	} else {
		elog = eventlog.NewStream(n.bus, "log", logBindings).WithRetention(bus.Retention{MaxAge: opts.LogMaxAge, MaxBytes: opts.LogMaxBytes, SegmentBytes: cfg.logSegmentBytes})
	}
	if n.cluster, err = newCluster(n, elog, local); err != nil {
		return nil, fmt.Errorf("restore routing state: %w", err)
	}
	if local == nil {
		n.cluster.snaps = newSnapshots(n.bus, opts.SnapshotEvery)
		n.cluster.snaps.always = cfg.joinFromSnapshot
	}
	if cfg.holeRecheck > 0 {
		n.cluster.holeRecheck = cfg.holeRecheck
	}
	if cfg.logCheckEvery > 0 {
		n.cluster.checkEvery = cfg.logCheckEvery
	}
	statusURL := ""
	if opts.PublicURL != "" {
		statusURL = strings.TrimSuffix(opts.PublicURL, "/") + "/sms/twilio/status"
	}
	n.outbound = newDispatcher(dispatcherDeps{
		sender: n.sender, store: n.store, role: n.cluster, now: n.now, metrics: n.metrics,
		after: func(wait time.Duration, f func()) {
			n.goFunc(func() {
				if pause.For(n.ctx, wait) {
					f()
				}
			})
		},
		statusURL: statusURL, smsFrom: opts.TwilioFrom, whatsAppFrom: opts.TwilioWhatsAppFrom,
		setStatus: n.setStatus, applyEarly: n.applyEarly,
	}, n.logBase.With("component", "outbound"))
	n.cluster.outbound = n.outbound
	if cfg.Backoff != nil {
		n.outbound.backoff = *cfg.Backoff
	}
	n.handler = n.routes()
	return n, nil
}

// openBus returns the bus: cfg's, the in-process one for a node alone, or
// RabbitMQ. RabbitMQ connects in the background, retrying (reconnecting at
// least every second, so service resumes quickly after a broker restart):
// a node started while it is down serves /healthz, journals what it
// accepts and says on /readyz why it is not ready.
func openBus(opts Options, cfg Config, log *slog.Logger) (bus.Bus, error) {
	switch {
	case cfg.Bus != nil:
		return cfg.Bus, nil
	case opts.AMQPURL == "":
		return bus.NewMemory(bus.MemoryOptions{Logger: log, QueueSize: 8192}), nil
	}
	ao := amqpbus.Options{URL: opts.AMQPURL, Logger: log, ReconnectMax: time.Second, ConnectionName: "switchboard " + opts.Node}
	if opts.AMQPExchange != "" {
		ao.Exchange, ao.QueuePrefix = opts.AMQPExchange, opts.AMQPExchange+"."
	}
	b, err := amqpbus.Open(ao)
	if err != nil {
		return nil, fmt.Errorf("RabbitMQ: %w", err)
	}
	return b, nil
}

func (n *Node) statsOptions(log *slog.Logger) udpstats.Options {
	return udpstats.Options{
		Group:    n.opts.StatsGroup,
		Iface:    n.opts.StatsIface,
		Interval: n.opts.StatsInterval,
		Node:     n.opts.Node,
		Logger:   log,
	}
}

// Handler returns the node's HTTP handler.
func (n *Node) Handler() http.Handler { return n.handler }

// Addr returns the address the node listens on (after Start).
func (n *Node) Addr() net.Addr { return n.listener.Addr() }

// catchUpWait bounds how long Start waits for the node to catch up with
// its log; unreachableWait how long it waits for a log it cannot reach.
const (
	catchUpWait     = 10 * time.Second
	unreachableWait = time.Second
)

// awaitCatchUp waits until the node has caught up with its log, at most
// catchUpWait, and at most unreachableWait while the log cannot be reached
// (the broker is down: the node keeps trying, and Ready says why).
func (n *Node) awaitCatchUp() {
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-n.cluster.caughtUpCh:
			return
		case <-tick.C:
		}
		waited := time.Since(start)
		if err := n.cluster.elog.Ready(); err != nil && waited >= unreachableWait {
			n.log.Warn("cannot reach the log yet; serving, and retrying (/readyz answers 503 until caught up)", "err", err)
			return
		}
		if waited >= catchUpWait {
			n.log.Warn("still catching up with the log; /readyz answers 503 until it has", "waited", waited)
			return
		}
	}
}

// Start listens on opts.Addr and starts serving. It returns once the node
// has caught up with its log and is ready to take webhooks and agents, or
// after catchUpWait (then Ready says it is still catching up).
func (n *Node) Start() error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("switchboard: already started")
	}
	ln, err := n.listener, error(nil)
	if ln == nil {
		ln, err = net.Listen("tcp", n.opts.Addr)
	}
	if err != nil {
		n.shutdownParts(context.Background())
		return fmt.Errorf("listen on %s: %w", n.opts.Addr, err)
	}
	n.listener = ln
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.cluster.ctx = n.ctx // before any goroutine that reads it starts

	n.goFunc(func() { n.router.run(n.ctx) })
	n.goFunc(func() { n.subscribe(n.ctx) })
	n.goFunc(func() { n.outbound.run(n.ctx) })
	n.goFunc(func() { n.pinger(n.ctx) })
	if n.emitter != nil {
		n.goFunc(func() { n.emitter.Run(n.ctx) })
	}

	n.srv = &http.Server{
		Handler:           n.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	n.goFunc(func() {
		if err := n.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	})
	if n.opts.TwilioRegister {
		n.goFunc(func() { n.registerTwilio(n.ctx) }) // logs its outcome; never stops the node
	}
	if n.opts.InsecureSkipSignature {
		n.log.Warn("webhook signature checking is OFF (-insecure-skip-signature): anyone can post fake SMS")
	} else if n.opts.TwilioAuthToken == "" {
		n.log.Warn("no TWILIO_AUTH_TOKEN: inbound webhooks are refused (403) until it is set, or run with -insecure-skip-signature for development")
	}
	if n.opts.Secret == "" {
		n.log.Warn("no SWITCHBOARD_SECRET: agents cannot connect")
	}
	if n.opts.TwilioAccountSID != "" && n.opts.PublicURL == "" {
		n.log.Warn(MsgNoPublicURL)
	}
	// A node alone catches up with its local log in moments; a node that
	// joins a long stream log may take longer and says so on /readyz.
	n.awaitCatchUp()
	n.log.Info("switchboard listening", "addr", ln.Addr().String(), "log", n.cluster.elog.Name(), "sms", n.sender.Name(), "data", n.opts.DataDir)
	return nil
}

// Run starts the node and serves until ctx is done or the node fails
// (Failed), then shuts down (Wait).
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(); err != nil {
		return err
	}
	return n.Wait(ctx)
}

// Wait serves a started node until ctx is done or the node fails (Failed),
// then shuts it down within the shutdown timeout. It returns the failure,
// if any, joined with what Shutdown returns.
func (n *Node) Wait(ctx context.Context) error {
	var failure error
	select {
	case <-ctx.Done():
		n.log.Info("shutting down", "timeout", n.opts.ShutdownTimeout)
	case failure = <-n.Failed():
		n.log.Error("shutting down after a failure; restart the node (a supervisor does)", "err", failure, "timeout", n.opts.ShutdownTimeout)
	}
	sctx, cancel := context.WithTimeout(context.Background(), n.opts.ShutdownTimeout)
	defer cancel()
	return errors.Join(failure, n.Shutdown(sctx))
}

// Failed receives, once, the reason why the node cannot go on and must be
// restarted: the node has already stopped taking work (it reports not
// ready) and expects its owner to Shutdown and restart it. A supervisor
// that restarts the process (systemd, Heroku, compose) is enough: the
// switchboard command exits with an error. Cluster nodes fail this way
// when the broker lost the cluster's log (see docs/architecture.md, failure cases); the restarted
// node replays the new log.
func (n *Node) Failed() <-chan error { return n.failed }

// fail reports err through Failed, once.
func (n *Node) fail(err error) {
	n.failOnce.Do(func() {
		n.log.Error("node failed: it must be restarted", "err", err)
		n.failed <- err
	})
}

// Shutdown stops accepting requests, closes agent sessions, lets in-flight
// work finish (bounded by ctx), then closes the bus and the store. It runs
// once; later calls return the first result.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() { n.stopErr = n.shutdownParts(ctx) })
	return n.stopErr
}

func (n *Node) shutdownParts(ctx context.Context) error {
	n.stopping.Store(true)
	var errs []error
	if n.srv != nil {
		if err := n.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if n.cancel != nil {
		// Sessions are hijacked connections: http.Server.Shutdown does not
		// close them, the router does.
		n.router.call(ctx, n.router.closeAll)
		if n.cluster.caughtUp.Load() {
			n.cluster.saveNow(ctx)
		}
	}
	n.subsMu.Lock()
	subs := n.subs
	n.subs, n.subsDone = nil, true
	n.subsMu.Unlock()
	for _, s := range subs {
		s.Close()
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.wgMu.Lock()
	n.wgClosed = true
	n.wgMu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, errors.New("shutdown: goroutines still running at the deadline"))
	}
	if err := n.bus.Close(); err != nil {
		errs = append(errs, fmt.Errorf("bus close: %w", err))
	}
	if err := n.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store close: %w", err))
	}
	if c, ok := n.sender.(io.Closer); ok {
		c.Close()
	}
	if n.emitter != nil {
		n.emitter.Close()
	}
	n.log.Info("switchboard stopped")
	return errors.Join(errs...)
}

// addSub records a subscription for Shutdown to close (at once when the
// node is already shutting down).
func (n *Node) addSub(s bus.Subscription) {
	n.subsMu.Lock()
	done := n.subsDone
	if !done {
		n.subs = append(n.subs, s)
	}
	n.subsMu.Unlock()
	if done {
		s.Close()
	}
}

// goFunc runs f in a goroutine tracked by Shutdown. Once Shutdown waits
// for them it runs nothing and returns false: an agent's connection can
// still be handled then (a hijacked connection is not waited for by the
// HTTP server), and a WaitGroup must not grow while it is waited on.
func (n *Node) goFunc(f func()) bool {
	n.wgMu.Lock()
	defer n.wgMu.Unlock()
	if n.wgClosed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// Ready reports whether the store and the bus can take work.
func (n *Node) Ready() error {
	if n.stopping.Load() {
		return errors.New("shutting down")
	}
	if err := n.store.Ready(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := n.bus.Ready(); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	if err := n.startErr.Load(); err != nil {
		return fmt.Errorf("starting: %w", *err)
	}
	return n.cluster.ready()
}

// subscribe starts the log machinery and navigation analytics, retrying
// with capped backoff while they cannot start (the broker is away) until
// ctx ends. Meanwhile Ready says why the node is not ready.
func (n *Node) subscribe(ctx context.Context) {
	backoff := startRetryMin
	logUp := false
	for attempt := 1; ; attempt++ {
		var err error
		if !logUp {
			err = n.cluster.start(ctx)
			logUp = err == nil
		}
		if logUp {
			err = n.startNav()
		}
		if err == nil {
			n.startErr.Store(nil)
			return
		}
		if ctx.Err() != nil {
			return
		}
		n.startErr.Store(&err)
		n.log.Warn("starting on the log failed; retrying", "attempt", attempt, "err", err, "next_in", backoff)
		if !pause.For(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, startRetryMax)
	}
}

// The backoff of subscribe.
const (
	startRetryMin = 100 * time.Millisecond
	startRetryMax = 5 * time.Second
)

// publish sends an event on the bus and waits for it to be accepted.
func (n *Node) publish(ctx context.Context, key string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("publish %s: %w", key, err)
	}
	start := n.now()
	if err := n.bus.Publish(ctx, key, body); err != nil && !errors.Is(err, bus.ErrUnroutable) {
		return fmt.Errorf("publish %s: %w", key, err)
	}
	n.metrics.busLatency.Observe(n.now().Sub(start))
	return nil
}

// publishAsync publishes an informational event (assignments, presence) that
// nothing in the node waits for.
func (n *Node) publishAsync(key string, v any) {
	if n.ctx == nil {
		return
	}
	n.goFunc(func() {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		defer cancel()
		if err := n.publish(ctx, key, v); err != nil && n.ctx.Err() == nil {
			n.log.Warn("publish event", "key", key, "err", err)
		}
	})
}
