package switchboard

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/internal/pause"
	"github.com/switchboard/switchboard/switchboard/nav"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/store"
)

// navNode wires the navigation analytics (package nav) into the node: the
// service, its bus subscriptions, and the stats frames pushed to agents.
type navNode struct {
	svc *nav.Service

	// Owned by the router goroutine (touched only inside router.do).
	topSent  map[*session]uint64 // top-list version each session last got
	custSent map[string]custPush // phone → what its agent last got
	topFrame []byte              // the current top frame (JSON); nil before the first ranking
	topVer   uint64              // version of topFrame
	topEmpty bool                // topFrame is emptyTopFrame
}

type custPush struct {
	s    *session
	data []byte
}

// openNav builds the navigation service on the node's store and bus. It
// starts nothing: startNav does, from subscribe.
func (n *Node) openNav() error {
	o := n.opts.Nav
	o.Node = n.opts.Node
	o.Now = n.now
	o.Logger = n.logBase // nav adds component=nav; n.log already says component=node
	if n.opts.AMQPURL == "" {
		o.PublishConcurrency = 1 // in-process: publishing is cheap, keep a batch in order
	}
	o.Accepted = func(k int) { n.metrics.navEvents.Add(int64(k)) }
	svc, err := nav.New(o, n.store, navPublisher{n})
	if err != nil {
		return fmt.Errorf("navigation analytics: %w", err)
	}
	n.nav = &navNode{svc: svc, topSent: make(map[*session]uint64), custSent: make(map[string]custPush)}
	return nil
}

// navStream is the RabbitMQ stream of navigation events (nav.view.*).
const navStream = "nav"

// navPublisher publishes through whatever bus the node has.
type navPublisher struct{ n *Node }

func (p navPublisher) Publish(ctx context.Context, key string, body []byte) error {
	return p.n.bus.Publish(ctx, key, body)
}

// startNav subscribes the navigation handlers (each node its own private
// queues: every node applies every event) and starts the service and the
// agent pusher.
func (n *Node) startNav() error {
	svc := n.nav.svc
	subs := []struct {
		opts bus.SubscribeOptions
		h    bus.Handler
	}{
		{bus.SubscribeOptions{Bindings: []string{nav.BindView, nav.BindLink}}, svc.HandleView},
		{bus.SubscribeOptions{Bindings: []string{nav.BindTop}}, svc.HandleTop},
		{bus.SubscribeOptions{Bindings: []string{nav.BindCatalog}}, svc.HandleCatalog},
	}
	if n.opts.AMQPURL != "" {
		// With RabbitMQ the events and catalog changes go through a stream
		// that every node reads at its own pace, in one order: a node that
		// was down resumes after the last entry its stored counters
		// include, and a new node replays the history (catalog changes
		// included, each before the events that follow it), so all nodes
		// converge to the same catalog and counters.
		subs[0].opts = bus.SubscribeOptions{Queue: navStream, Bindings: []string{nav.BindView, nav.BindLink, nav.BindCatalog}, Stream: true,
			Offset: svc.StreamOffset() + 1, MaxAttempts: 3, RetryDelay: 100 * time.Millisecond}
		subs[0].h = navStreamHandler(svc)
		subs = subs[:2]
	}
	heads, _ := n.bus.(bus.StreamHead)
	for _, s := range subs {
		if s.opts.Stream && heads != nil {
			sb, err := n.followNavStream(heads, s.opts, s.h)
			if err != nil {
				return err
			}
			n.addSub(sb)
			continue
		}
		sb, err := n.bus.Subscribe(n.ctx, s.opts, s.h)
		if err != nil {
			return fmt.Errorf("subscribe %v: %w", s.opts.Bindings, err)
		}
		n.addSub(sb)
	}
	n.goFunc(func() { n.nav.svc.Run(n.ctx) })
	n.goFunc(n.navPushLoop)
	return nil
}

// followNavStream subscribes to the nav stream after the stored counters'
// offset, but applies nothing until it has read the stream's first entry
// (waiting for one if the stream is empty): if that is not the first entry
// of the stream the offset is a position in (the stream was deleted and
// declared again, or the broker lost it), it reads the new stream from its
// start instead, so that its events are counted rather than skipped as
// already seen (see cluster.start for the log). While the node runs it
// reads the first entry again as often as the cluster checks its log, and
// moves to a new stream the same way: the counters are not routing state,
// so unlike the log this needs no restart.
func (n *Node) followNavStream(heads bus.StreamHead, opts bus.SubscribeOptions, h bus.Handler) (bus.Subscription, error) {
	svc := n.nav.svc
	gate := make(chan struct{})
	first, err := n.bus.Subscribe(n.ctx, opts, gated(gate, h))
	if err != nil {
		return nil, fmt.Errorf("subscribe %v: %w", opts.Bindings, err)
	}
	sub := &swappable{sub: first}
	log := n.logBase.With("component", "nav")
	every := n.cluster.checkEvery
	// restart counts the stream whose first entry is cur from its start.
	restart := func(cur logHead, enc []byte, counted int64, old logHead) bool {
		log.Warn("nav stream was replaced (the broker lost it, or it was deleted): counting the new stream from its start",
			"counted_up_to", counted, "old_first", old, "new_first", cur)
		if !sub.swap(nil) {
			return false // closing
		}
		svc.SetStream(enc, true)
		opts.Offset = 0
		for {
			next, err := n.bus.Subscribe(n.ctx, opts, h)
			if err == nil {
				return sub.swap(next)
			}
			log.Error("subscribe to the new nav stream; retrying", "err", err)
			if !pause.For(n.ctx, time.Second) {
				return false
			}
		}
	}
	n.goFunc(func() {
		var known logHead
		if old := svc.StreamHead(); old == nil || json.Unmarshal(old, &known) != nil || svc.StreamOffset() < 0 {
			known = logHead{Offset: -1}
		}
		opened := false
		wait := time.Duration(0)
		for {
			if !pause.For(n.ctx, wait) {
				return
			}
			hctx, cancel := context.WithTimeout(n.ctx, max(every, time.Second))
			d, err := heads.Head(hctx, navStream)
			cancel()
			if err != nil {
				if n.ctx.Err() != nil {
					return
				}
				if !opened {
					log.Warn("read the nav stream's first entry; retrying", "err", err)
				}
				wait = min(every, time.Second) // the broker is away, or the stream is new and empty
				continue
			}
			wait = every
			cur := headOf(d.Offset, d.Key, d.Body)
			enc, _ := json.Marshal(cur)
			if known.Offset >= 0 && known.replacedBy(cur) {
				if !restart(cur, enc, svc.StreamOffset(), known) {
					return
				}
			} else if !opened {
				svc.SetStream(enc, false)
			}
			if !opened {
				close(gate)
				opened = true
			}
			known = cur
		}
	})
	return sub, nil
}

// navStreamHandler handles the nav stream's entries: catalog changes and
// navigation events.
func navStreamHandler(svc *nav.Service) bus.Handler {
	return func(ctx context.Context, d bus.Delivery) error {
		if strings.HasPrefix(d.Key, "nav.catalog.") {
			return svc.HandleCatalog(ctx, d)
		}
		return svc.HandleView(ctx, d)
	}
}

// swappable is a subscription that can be replaced by another while the
// node runs; Close closes whichever is current, and any set later.
type swappable struct {
	mu     sync.Mutex
	sub    bus.Subscription
	closed bool
}

// swap closes the current subscription and makes next (nil: none) current.
// It returns false, closing next, when the swappable was closed.
func (s *swappable) swap(next bus.Subscription) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub != nil {
		s.sub.Close()
	}
	s.sub = next
	if s.closed {
		if next != nil {
			next.Close()
		}
		return false
	}
	return true
}

func (s *swappable) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.sub == nil {
		return nil
	}
	err := s.sub.Close()
	s.sub = nil
	return err
}

// navRoutes registers the navigation endpoints.
func (n *Node) navRoutes(mux *http.ServeMux) {
	n.nav.svc.Register(mux, n.admin)
}

// navPushLoop sends stats frames to agents once per resolution tick: the
// top list to every session that has not seen its current version, and to
// the agent of each recently active linked customer a frame with what the
// customer viewed, when it changed or the conversation moved to another
// session.
func (n *Node) navPushLoop() {
	t := time.NewTicker(n.opts.Nav.Resolution)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		top, ver := n.nav.svc.Top()
		topFrame := emptyTopFrame
		if len(top.Top) > 0 {
			topFrame, _ = json.Marshal(protocol.Frame{Type: protocol.TypeStats, Top: top.Top})
		}
		custs := n.nav.svc.ActiveCustomers()
		frames := make([][]byte, len(custs))
		for i, c := range custs {
			frames[i], _ = json.Marshal(c.Frame)
		}
		n.router.do(n.ctx, func() { n.navPush(ver, topFrame, custs, frames) })
	}
}

// emptyTopFrame tells agents that no product was viewed in the window any
// more (protocol.Frame would omit an empty top list, which the agent could
// not tell from a customer's stats).
var emptyTopFrame = []byte(`{"type":"stats","top":[]}`)

// navPush runs on the router goroutine.
func (n *Node) navPush(ver uint64, topFrame []byte, custs []nav.CustomerFrame, frames [][]byte) {
	nn, r := n.nav, n.router
	if ver != 0 { // version 0: nothing was ever ranked
		nn.topFrame, nn.topVer = topFrame, ver
		nn.topEmpty = bytes.Equal(topFrame, emptyTopFrame)
	}
	live := make(map[*session]bool, len(r.sessions))
	for _, s := range r.sessions {
		live[s] = true
		last, got := nn.topSent[s]
		// An empty list goes only to sessions that were shown a list, to
		// clear it; a session that connects later is sent nothing.
		if nn.topFrame != nil && last != nn.topVer && (got || !nn.topEmpty) {
			if s.enqueueRaw(nn.topFrame, time.Time{}) {
				nn.topSent[s] = nn.topVer
			}
		}
	}
	for s := range nn.topSent {
		if !live[s] {
			delete(nn.topSent, s)
		}
	}
	for i, c := range custs {
		s := r.sessions[r.engine.Owner(c.Phone)]
		if s == nil {
			delete(nn.custSent, c.Phone)
			continue
		}
		if last, ok := nn.custSent[c.Phone]; ok && last.s == s && bytes.Equal(last.data, frames[i]) {
			continue
		}
		if s.enqueueRaw(frames[i], time.Time{}) {
			nn.custSent[c.Phone] = custPush{s: s, data: frames[i]}
		}
	}
	if len(nn.custSent) > 2*len(custs)+100 {
		active := make(map[string]bool, len(custs))
		for _, c := range custs {
			active[c.Phone] = true
		}
		for p := range nn.custSent {
			if !active[p] {
				delete(nn.custSent, p)
			}
		}
	}
}

// navSettings are the -nav-* and -top-n settings (see Settings).
func navSettings() []Setting {
	dur := func(name, env, usage string, p func(o *Options) *time.Duration) Setting {
		return Setting{Flag: name, Env: []string{env}, Usage: usage,
			bind: func(fs *flag.FlagSet, o *Options, n, u string) { fs.DurationVar(p(o), n, *p(o), u) },
			set: func(o *Options, v string) error {
				d, err := time.ParseDuration(v)
				if err == nil {
					*p(o) = d
				}
				return err
			}}
	}
	integer := func(name, env, usage string, p func(o *Options) *int) Setting {
		return Setting{Flag: name, Env: []string{env}, Usage: usage,
			bind: func(fs *flag.FlagSet, o *Options, n, u string) { fs.IntVar(p(o), n, *p(o), u) },
			set: func(o *Options, v string) error {
				i, err := strconv.Atoi(v)
				if err == nil {
					*p(o) = i
				}
				return err
			}}
	}
	return []Setting{
		{Flag: "nav-sample", Env: []string{"SWITCHBOARD_NAV_SAMPLE"}, Usage: "load the sample catalog into an empty catalog",
			bind: func(fs *flag.FlagSet, o *Options, n, u string) { fs.BoolVar(&o.Nav.Sample, n, o.Nav.Sample, u) },
			set: func(o *Options, v string) error {
				b, err := strconv.ParseBool(v)
				if err == nil {
					o.Nav.Sample = b
				}
				return err
			}},
		dur("nav-window", "SWITCHBOARD_NAV_WINDOW", "span of the rolling top-N of viewed products", func(o *Options) *time.Duration { return &o.Nav.Window }),
		dur("nav-resolution", "SWITCHBOARD_NAV_RESOLUTION", "bucket size of the top-N window and how often it is recomputed", func(o *Options) *time.Duration { return &o.Nav.Resolution }),
		integer("top-n", "SWITCHBOARD_TOP_N", "length of the top list of viewed products", func(o *Options) *int { return &o.Nav.TopN }),
		integer("nav-max-products", "SWITCHBOARD_NAV_MAX_PRODUCTS", "distinct products remembered per shop user (oldest forgotten)", func(o *Options) *int { return &o.Nav.MaxProductsPerUser }),
		dur("nav-user-ttl", "SWITCHBOARD_NAV_USER_TTL", "forget a shop user's history after this long without events", func(o *Options) *time.Duration { return &o.Nav.UserTTL }),
		integer("nav-max-events", "SWITCHBOARD_NAV_MAX_EVENTS", "most events in one POST /nav (a larger batch gets 413)", func(o *Options) *int { return &o.Nav.MaxEvents }),
		{Flag: "nav-max-body", Env: []string{"SWITCHBOARD_NAV_MAX_BODY"}, Usage: "largest POST /nav body in bytes",
			bind: func(fs *flag.FlagSet, o *Options, n, u string) { fs.Int64Var(&o.Nav.MaxBody, n, o.Nav.MaxBody, u) },
			set: func(o *Options, v string) error {
				i, err := strconv.ParseInt(v, 10, 64)
				if err == nil {
					o.Nav.MaxBody = i
				}
				return err
			}},
	}
}

// ImportProducts stores a catalog file (a JSON array of products) into the
// LevelDB in dataDir: `switchboard products import FILE`. The node must not
// be running on that directory (LevelDB allows one process); a running node
// takes PUT /products/{id} instead.
func ImportProducts(dataDir string, r io.Reader) (int, error) {
	st, err := store.Open(store.Options{Dir: dataDir})
	if err != nil {
		return 0, fmt.Errorf("open %s (is a node running on it? use PUT /products/{id} then): %w", dataDir, err)
	}
	n, err := nav.ImportCatalog(st, r)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return n, err
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
