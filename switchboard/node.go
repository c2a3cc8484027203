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
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/bus/amqpbus"
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

	store     *store.Store
	bus       bus.Bus
	sender    sms.Sender
	validator *twilio.Validator
	router    *router
	outbound  *dispatcher
	nav       *navNode // navigation analytics (nav.go)
	early     earlyStatuses
	cluster   *cluster          // nil in single-node mode
	emitter   *udpstats.Emitter // nil when metrics are off
	live      sync.Map          // *session → struct{}: open agent connections, for the pinger

	srv      *http.Server
	listener net.Listener
	handler  http.Handler

	ctx      context.Context // cancelled at shutdown: stops every goroutine below
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	subs     []bus.Subscription
	started  atomic.Bool
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
	Sender sms.Sender // overrides the provider chosen from the Twilio settings
	Bus    bus.Bus    // overrides the bus chosen from -amqp (the node closes it)
	NewID  func() string
	// Backoff overrides sms.DefaultBackoff for outbound retries (tests).
	Backoff *sms.Backoff
	// Listener, when set, is what Start serves on instead of listening on
	// opts.Addr: the binary listens first, so a taken port is reported
	// before the store is opened. Start owns it from then on.
	Listener net.Listener

	// logCheckEvery overrides how often a cluster node checks that its log
	// is still the one it has applied (tests; 0 = logCheckEvery).
	logCheckEvery time.Duration
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

	switch {
	case cfg.Bus != nil:
		n.bus = cfg.Bus
	case opts.AMQPURL == "":
		n.bus = bus.NewMemory(bus.MemoryOptions{Logger: log, QueueSize: 8192})
	default:
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Reconnect at least every second, so service resumes quickly after
		// a broker restart.
		ao := amqpbus.Options{URL: opts.AMQPURL, Logger: log, ReconnectMax: time.Second, ConnectionName: "switchboard " + opts.Node}
		if opts.AMQPExchange != "" {
			ao.Exchange, ao.QueuePrefix = opts.AMQPExchange, opts.AMQPExchange+"."
		}
		n.bus, err = amqpbus.Dial(ctx, ao)
		if err != nil {
			return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
		}
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
	n.router = newRouter(n)
	if opts.AMQPURL != "" {
		if n.cluster, err = newCluster(n); err != nil {
			return nil, fmt.Errorf("restore cluster state: %w", err)
		}
		if cfg.logCheckEvery > 0 {
			n.cluster.checkEvery = cfg.logCheckEvery
		}
	} else if err := n.router.restore(); err != nil {
		return nil, fmt.Errorf("restore routing state: %w", err)
	}
	n.outbound = newDispatcher(n)
	if cfg.Backoff != nil {
		n.outbound.backoff = *cfg.Backoff
	}
	n.handler = n.routes()
	return n, nil
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

// Start listens on opts.Addr and starts serving. It returns once the node is
// ready to take webhooks and agents.
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

	n.goFunc(func() { n.router.run(n.ctx) })
	if err := n.subscribe(); err != nil {
		ln.Close()
		n.shutdownParts(context.Background())
		return err
	}
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
	n.log.Info("switchboard listening", "addr", ln.Addr().String(), "bus", n.busName(), "sms", n.sender.Name(), "data", n.opts.DataDir)
	return nil
}

func (n *Node) busName() string {
	if n.opts.AMQPURL == "" {
		return "in-process"
	}
	return "rabbitmq"
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
// when the broker lost the cluster's log (see README: Limits); the restarted
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
		if n.cluster != nil && n.cluster.caughtUp.Load() {
			n.cluster.saveNow(ctx)
		}
	}
	for _, s := range n.subs {
		s.Close()
	}
	if n.cancel != nil {
		n.cancel()
	}
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

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// gated returns a handler that passes deliveries to h once gate is
// closed; until then they wait (a closing subscription stops the wait).
func gated(gate <-chan struct{}, h bus.Handler) bus.Handler {
	return func(ctx context.Context, d bus.Delivery) error {
		select {
		case <-gate:
			return h(ctx, d)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// goFunc runs f in a goroutine tracked by Shutdown.
func (n *Node) goFunc(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
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
	if n.cluster != nil {
		return n.cluster.ready()
	}
	return nil
}

// subscribe connects the bus to the router and the dispatcher.
func (n *Node) subscribe() error {
	if n.cluster != nil {
		// The log carries sms.* and routing; navigation has its own keys.
		if err := n.cluster.start(n.ctx); err != nil {
			return err
		}
		return n.startNav()
	}
	type sub struct {
		queue    string
		bindings []string
		h        bus.Handler
	}
	subs := []sub{
		{"", []string{"sms.in.#"}, n.onInbound},
		{"", []string{"sms.out.#"}, n.onOutbound},
		{"", []string{"sms.status.#"}, n.onStatus},
	}
	for _, s := range subs {
		sb, err := n.bus.Subscribe(n.ctx, bus.SubscribeOptions{Queue: s.queue, Bindings: s.bindings}, s.h)
		if err != nil {
			return fmt.Errorf("subscribe %v: %w", s.bindings, err)
		}
		n.subs = append(n.subs, sb)
	}
	return n.startNav()
}

func decodeEvent(d bus.Delivery) (messageEvent, error) {
	var ev messageEvent
	if err := json.Unmarshal(d.Body, &ev); err != nil {
		return ev, bus.Permanent(fmt.Errorf("decode %s: %w", d.Key, err))
	}
	if ev.ID == "" || ev.Phone == "" {
		return ev, bus.Permanent(fmt.Errorf("decode %s: message without id or phone", d.Key))
	}
	return ev, nil
}

func (n *Node) onInbound(ctx context.Context, d bus.Delivery) error {
	ev, err := decodeEvent(d)
	if err != nil {
		return err
	}
	var born time.Time
	if ev.Born > 0 {
		born = time.Unix(0, ev.Born)
	}
	if !n.router.do(ctx, func() { n.router.arrive(ev.Message, born) }) {
		return errors.New("router stopped")
	}
	return nil
}

func (n *Node) onOutbound(ctx context.Context, d bus.Delivery) error {
	ev, err := decodeEvent(d)
	if err != nil {
		return err
	}
	n.outbound.enqueue(ev.Message, "")
	if !n.router.do(ctx, func() { n.router.outbound(ev.Message) }) {
		return errors.New("router stopped")
	}
	return nil
}

func (n *Node) onStatus(ctx context.Context, d bus.Delivery) error {
	ev, err := decodeEvent(d)
	if err != nil {
		return err
	}
	if !n.router.do(ctx, func() { n.router.status(ev.Message, ev.Detail) }) {
		return errors.New("router stopped")
	}
	return nil
}

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
