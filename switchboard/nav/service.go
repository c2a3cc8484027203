package nav

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/store"
)

// Routing keys (DESIGN.md), plus nav.catalog.<id> for catalog changes
// between nodes and nav.link for events without a product (they only link
// a shop user to a phone).
const (
	KeyTop           = "stats.top"
	KeyLink          = "nav.link"
	keyViewPrefix    = "nav.view."
	keyStatsPrefix   = "stats.product."
	keyCatalogPrefix = "nav.catalog."
	// BindView, BindLink, BindTop and BindCatalog are the patterns a node
	// subscribes (each with a private queue, or BindView and BindLink the
	// nav stream) for HandleView, HandleTop and HandleCatalog.
	BindView    = "nav.view.*"
	BindLink    = KeyLink
	BindTop     = KeyTop
	BindCatalog = "nav.catalog.*"
)

// KeyView is the routing key of a view of product.
func KeyView(product string) string { return keyViewPrefix + product }

// KeyStats is the routing key of a product's counter update.
func KeyStats(product string) string { return keyStatsPrefix + product }

// Tuning that does not need a setting.
const (
	heartbeatTicks = 5       // an unchanged partial is republished every this many ticks
	peerTimeout    = 15      // a peer not heard from for this many ticks is dropped
	dedupeSize     = 1 << 16 // event ids remembered for redelivery dedupe
	recentViewed   = 10      // products in a customer's stats frame
	activeFor      = time.Hour
	maxActive      = 10000 // linked customers tracked for agent frames
)

// Store is the part of the store nav uses (store.Store implements it).
type Store interface {
	ProductStore
	WriteNav(*store.NavBatch) error
	NavProducts(fn func(id string, v []byte) error) error
	NavCounts(fn func(product string, v []byte) error) error
	NavUsers(fn func(user string, v []byte) error) error
	NavStreamOffset() (int64, bool, error)
	NavStreamHead() ([]byte, error)
}

// Publisher publishes on the bus (bus.Bus implements it).
type Publisher interface {
	Publish(ctx context.Context, key string, body []byte) error
}

// Service is the navigation analytics of one node. See the package comment
// for the design and the concurrency contract.
type Service struct {
	opts Options
	log  *slog.Logger

	unroutableWait time.Duration // unroutableWait; tests shorten it
	st             Store
	pub            Publisher
	seq            atomic.Uint64
	boot           string

	mu       sync.Mutex
	catalog  map[string]Product
	cv       *coview
	win      *window
	seen     dedupe
	peers    map[string]peer     // by node id, including this node
	local    []protocol.TopEntry // this node's last partial
	top      []protocol.TopEntry // merged, with titles
	topVer   uint64
	ticks    uint64
	lastPub  uint64              // tick of the last partial published
	dirtyPub map[string]struct{} // products to publish on stats.product.<id>
	active   map[string]int64    // linked phone → last view (ms)
	offset   int64               // last applied stream offset; -1 = none
	head     []byte              // identifies the stream offset is in (SetStream); nil = unknown
	offDirty bool                // offset or head changed since the last flush
	counters Counters

	flushMu sync.Mutex // one flush at a time
	batch   store.NavBatch
	buf     []byte
}

type peer struct {
	p     Partial
	heard uint64 // tick when last heard
}

// Counters are totals since New.
type Counters struct {
	Accepted   uint64 // events taken by Ingest (POST /nav)
	Counted    uint64 // PRODUCT views applied to the counters
	Ignored    uint64 // events of other types
	Unknown    uint64 // views of products not in the catalog
	Duplicates uint64 // redelivered events skipped by id
	Users      int    // users tracked now
}

// New loads the catalog (seeding the sample when it is empty and
// opts.Sample), the counters and the user histories from st. pub is used
// for every publish. Goroutines start only in Run.
func New(opts Options, st Store, pub Publisher) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Node == "" {
		return nil, errors.New("nav: Options.Node is required")
	}
	if st == nil || pub == nil {
		return nil, errors.New("nav: a store and a publisher are required")
	}
	opts.setDefaults()
	s := &Service{
		opts:           opts,
		unroutableWait: unroutableWait,
		log:            opts.Logger.With("component", "nav"),
		st:             st,
		pub:            pub,
		boot:           strconv.FormatInt(opts.Now().UnixNano(), 36),
		catalog:        make(map[string]Product),
		cv:             newCoview(opts.MaxProductsPerUser),
		win:            newWindow(opts.Window, opts.Resolution),
		seen:           newDedupe(dedupeSize),
		peers:          make(map[string]peer),
		dirtyPub:       make(map[string]struct{}),
		active:         make(map[string]int64),
		offset:         -1,
	}
	if err := st.NavProducts(func(id string, v []byte) error {
		var p Product
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("nav: load product %s: %w", id, err)
		}
		s.catalog[id] = p
		return nil
	}); err != nil {
		return nil, err
	}
	if len(s.catalog) == 0 && opts.Sample {
		for _, p := range SampleCatalog() {
			b, _ := json.Marshal(p)
			if err := st.PutProduct(p.ID, b); err != nil {
				return nil, fmt.Errorf("nav: seed sample catalog: %w", err)
			}
			s.catalog[p.ID] = p
		}
		s.log.Info("catalog was empty: loaded the sample catalog", "products", len(s.catalog))
	}
	if err := st.NavCounts(s.cv.loadCounts); err != nil {
		return nil, err
	}
	if err := st.NavUsers(s.cv.loadUser); err != nil {
		return nil, err
	}
	if off, ok, err := st.NavStreamOffset(); err != nil {
		return nil, err
	} else if ok {
		s.offset = off
	}
	head, err := st.NavStreamHead()
	if err != nil {
		return nil, err
	}
	s.head = head
	s.log.Info("navigation state loaded", "products", len(s.catalog), "counted_products", len(s.cv.counts), "users", len(s.cv.users))
	return s, nil
}

// Run ticks the window, flushes and expires until ctx ends; then it
// flushes a last time and tells the other nodes this one is leaving. Call
// it once, in a goroutine.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(s.opts.Resolution)
	defer tick.Stop()
	flush := time.NewTicker(s.opts.FlushInterval)
	defer flush.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Flush()
			lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.publish(lctx, s.leaving())
			cancel()
			return
		case <-tick.C:
			s.publish(ctx, s.tick(s.opts.Now()))
		case <-flush.C:
			s.Flush()
		case <-sweep.C:
			s.Sweep(s.opts.Now())
		}
	}
}

// message is one publish decided under the lock and sent after it.
type message struct {
	key  string
	body []byte
}

func (s *Service) publish(ctx context.Context, msgs []message) {
	for _, m := range msgs {
		if err := s.pub.Publish(ctx, m.key, m.body); err != nil && !errors.Is(err, bus.ErrUnroutable) && ctx.Err() == nil {
			s.log.Warn("publish", "key", m.key, "err", err)
		}
	}
}

// ---- ingestion ----

// unroutableWait bounds how long Ingest waits for a queue to be bound to
// an event's key: with RabbitMQ, a nav stream deleted by hand (or lost by
// the broker) is declared again by the nodes' consumers within a second or
// so; an event published meanwhile would go nowhere.
const (
	unroutableWait  = 3 * time.Second
	unroutableRetry = 100 * time.Millisecond
)

// publishEvent publishes one event, retrying while no queue is bound to
// key (for up to unroutableWait): an event the shop was told is accepted
// must reach the stream.
func (s *Service) publishEvent(ctx context.Context, key string, body []byte) error {
	var deadline time.Time // set at the first unroutable publish
	for {
		err := s.pub.Publish(ctx, key, body)
		if err == nil {
			return nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(s.unroutableWait)
		}
		if !errors.Is(err, bus.ErrUnroutable) || !time.Now().Before(deadline) {
			return fmt.Errorf("nav: publish %s: %w", key, err)
		}
		t := time.NewTimer(unroutableRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("nav: publish %s: %w (%w)", key, err, ctx.Err())
		case <-t.C:
		}
	}
}

// Ingest stamps each event with an id and this node, and publishes it on
// nav.view.<product>, or nav.link when it has no product (another type,
// which only links a user to a phone); the counters and links change when
// the event comes back from the bus (HandleView), on every node alike. It
// returns when the bus has accepted every event.
func (s *Service) Ingest(ctx context.Context, events []Event) error {
	s.mu.Lock()
	s.counters.Accepted += uint64(len(events))
	s.mu.Unlock()
	if s.opts.Accepted != nil {
		s.opts.Accepted(len(events))
	}
	now := s.opts.Now().UnixMilli()
	work := make([]int, 0, len(events))
	for i := range events {
		e := &events[i]
		e.Node = s.opts.Node
		e.ID = s.newID()
		e.At = now
		work = append(work, i)
	}
	one := func(i int) error {
		e := events[i]
		body, ok := appendEvent(make([]byte, 0, 128), &e)
		if !ok {
			var err error
			if body, err = json.Marshal(e); err != nil {
				return fmt.Errorf("nav: encode event: %w", err)
			}
		}
		key := KeyLink
		if e.Product != "" {
			key = KeyView(e.Product)
		}
		return s.publishEvent(ctx, key, body)
	}
	workers := min(s.opts.PublishConcurrency, len(work))
	if workers <= 1 {
		for _, i := range work {
			if err := one(i); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, workers)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(work) || errs[w] != nil {
					return
				}
				errs[w] = one(work[k])
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Service) newID() string {
	if s.opts.NewID != nil {
		return s.opts.NewID()
	}
	return s.opts.Node + "-" + s.boot + "-" + strconv.FormatUint(s.seq.Add(1), 36)
}

// HandleView is the bus handler for nav.view.*: it applies one event. A
// malformed event is dead-lettered (bus.Permanent).
func (s *Service) HandleView(_ context.Context, d bus.Delivery) error {
	e, err := DecodeEvent(d.Body)
	if err != nil {
		return bus.Permanent(fmt.Errorf("nav: decode %s: %w", d.Key, err))
	}
	s.applyAt(e, d.Offset)
	return nil
}

// Apply applies events as if they came from the bus (tests, benchmarks,
// and replays). Events should be validated.
func (s *Service) Apply(events ...Event) {
	for _, e := range events {
		s.apply(e)
	}
}

// apply updates the counters for one event and reports whether it counted.
func (s *Service) apply(e Event) bool { return s.applyAt(e, -1) }

// applyAt is apply for a stream delivery at offset (-1 = not a stream): the
// offset is remembered with the counters so a restart resumes after it.
func (s *Service) applyAt(e Event, offset int64) bool {
	now := s.opts.Now()
	ms := now.UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	if offset > s.offset {
		s.offset, s.offDirty = offset, true
	}
	if e.ID != "" && s.seen.dup(e.ID) {
		s.counters.Duplicates++
		return false
	}
	if e.Type != TypeProduct {
		s.counters.Ignored++
		s.cv.touch(e.User, e.Phone, ms)
		s.markActive(e.User, ms)
		return false
	}
	p, ok := s.catalog[e.Product]
	if !ok {
		s.counters.Unknown++
		s.cv.touch(e.User, e.Phone, ms)
		return false
	}
	var mark map[string]struct{}
	owned := s.owns(e)
	if owned {
		mark = s.dirtyPub
		at := now
		if e.At > 0 && e.At < ms {
			at = time.UnixMilli(e.At) // late through the bus: its own bucket
		}
		s.win.add(e.Product, at)
	}
	s.cv.view(e.User, e.Product, p.Category, e.Phone, ms, mark)
	s.markActive(e.User, ms)
	s.counters.Counted++
	return true
}

func (s *Service) markActive(user string, ms int64) {
	u := s.cv.users[user]
	if u == nil || u.Phone == "" {
		return
	}
	if _, ok := s.active[u.Phone]; ok || len(s.active) < maxActive {
		s.active[u.Phone] = ms
	}
}

// owns reports whether this node counts e in its window and publishes its
// counter changes: the ingesting node does; an event published straight to
// the bus by a shop (no node) belongs to the live node with the smallest id.
func (s *Service) owns(e Event) bool {
	if e.Node != "" {
		return e.Node == s.opts.Node
	}
	return s.leader() == s.opts.Node
}

func (s *Service) leader() string {
	l := s.opts.Node
	for id := range s.peers {
		if id < l {
			l = id
		}
	}
	return l
}

// StreamHead returns what identifies the stream StreamOffset is a position
// in, as given to SetStream (nil = nothing yet).
func (s *Service) StreamHead() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head
}

// SetStream records head as what identifies the stream the offset is a
// position in. reset also starts the position over: the stream was
// replaced by a new one, whose entries are all new to the counters. Both
// are stored with the next flush.
func (s *Service) SetStream(head []byte, reset bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.head = head
	if reset {
		s.offset = -1
	}
	s.offDirty = true
}

// StreamOffset returns the last stream offset whose event is included in
// the stored counters (-1 = none): a node consuming the RabbitMQ stream
// resumes at StreamOffset()+1.
func (s *Service) StreamOffset() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offset
}

// ---- top-N ----

// tick advances the window to now, recomputes this node's partial ranking
// and the merged top-N, and returns what to publish: the partial when it
// changed (or as a heartbeat) and coalesced stats.product updates. Run
// calls it every Resolution; tests call it with an injected clock.
func (s *Service) tick(now time.Time) []message {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ticks++
	var out []message
	s.win.advance(now)
	local := s.win.ranking(s.opts.PartialSize)
	if !slices.Equal(local, s.local) || s.ticks-s.lastPub >= heartbeatTicks || s.ticks == 1 {
		body, _ := json.Marshal(Partial{Node: s.opts.Node, At: now.UnixMilli(), Window: s.opts.Window.String(), Top: local})
		out = append(out, message{KeyTop, body})
		s.lastPub = s.ticks
	}
	s.local = local
	s.peers[s.opts.Node] = peer{p: Partial{Node: s.opts.Node, Top: local}, heard: s.ticks}
	partials := make([]Partial, 0, len(s.peers))
	for id, p := range s.peers {
		if s.ticks-p.heard > peerTimeout {
			s.log.Info("peer ranking dropped: not heard from", "peer", id)
			delete(s.peers, id)
			continue
		}
		partials = append(partials, p.p)
	}
	top := Merge(partials, s.opts.TopN)
	for i := range top {
		top[i].Title = s.catalog[top[i].Product].Title
	}
	if !slices.Equal(top, s.top) {
		s.top = top
		s.topVer++
	}
	for _, id := range slices.Sorted(maps.Keys(s.dirtyPub)) {
		body, _ := json.Marshal(ProductStats{Product: id, Categories: s.cv.categories(id)})
		out = append(out, message{KeyStats(id), body})
	}
	clear(s.dirtyPub)
	return out
}

func (s *Service) leaving() []message {
	body, _ := json.Marshal(Partial{Node: s.opts.Node, At: s.opts.Now().UnixMilli(), Window: s.opts.Window.String(), Top: []protocol.TopEntry{}, Leaving: true})
	return []message{{KeyTop, body}}
}

// dedupe remembers the last n event ids.
type dedupe struct {
	set  map[string]struct{}
	ring []string
	next int
}

func newDedupe(n int) dedupe {
	return dedupe{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

func (d *dedupe) dup(id string) bool {
	if _, ok := d.set[id]; ok {
		return true
	}
	if old := d.ring[d.next]; old != "" {
		delete(d.set, old)
	}
	d.ring[d.next] = id
	d.set[id] = struct{}{}
	d.next = (d.next + 1) % len(d.ring)
	return false
}
