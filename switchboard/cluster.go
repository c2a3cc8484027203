package switchboard

// The node's log machinery: accepting, applying, checkpoints, log
// identity and, with the stream log, membership. The node runs it alone
// on the local log or with others on the RabbitMQ stream log alike; see
// doc.go for the data path, the goroutines and the lock order.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/eventlog"
	"github.com/switchboard/switchboard/switchboard/store"
)

// Cluster timing. Heartbeats are cheap non-persistent fan-out messages.
const (
	heartbeatEvery = time.Second
	deadAfter      = 5 * time.Second
	// leaseFor: a node that has not heard its own heartbeat for this long
	// starts no send (dispatcher.ready). Others declare it dead only after
	// deadAfter of silence, and its adopter waits a further attempt's
	// length before sending its replies (dispatcher.handOver).
	leaseFor       = 2 * heartbeatEvery
	republishAfter = 3 * time.Second
	// A checkpoint (routing snapshot, fsynced) costs tens of milliseconds
	// under load; after a crash the node replays at most this much of the
	// log, idempotently.
	checkpointEvery   = time.Second
	checkpointEntries = 20000
	// How often a node checks that the log's first entry is still the one
	// it has seen (a broker that lost its data has a new, different log).
	logCheckEvery     = 10 * time.Second
	recentIDs         = 4096
	publishWait       = 5 * time.Second
	journalSweepEvery = time.Second
	// While every publish succeeds the journal holds only events on their
	// way into the log, and reading it finds nothing to republish: it is
	// read every journalSweepEvery only while entries whose publish failed
	// (or that were there when the node started) are still in it, and
	// otherwise every journalScanEvery, as a safety net.
	journalScanEvery = 30 * time.Second
)

// logBindings are the keys the log stream keeps.
var logBindings = []string{"sms.in.#", "sms.out.#", "sms.status.#", "agent.presence.#", "route.#", "note.#", "contact.#", "canned.#"}

// BrokerNames returns the exchanges and durable queues that nodes declare on
// the broker for exchange (-amqp-exchange): everything to delete to remove a
// cluster's state from RabbitMQ. Private queues are exclusive and vanish
// with their connection.
func BrokerNames(exchange string) (exchanges, queues []string) {
	if exchange == "" {
		exchange = "switchboard"
	}
	return []string{exchange, exchange + ".dlx"},
		[]string{exchange + ".log", exchange + "." + snapshotQueue, exchange + "." + navStream, exchange + ".dead"}
}

// clusterDeps is what the cluster takes from the node: the parts it drives
// (store, router, dispatcher, early statuses, bus), the node's clock,
// metrics and settings, and its lifetime: the goroutines it starts, the
// subscriptions it closes at shutdown, and its failure. No *Node.
type clusterDeps struct {
	store    *store.Store
	router   *router
	outbound *dispatcher // set by New once the dispatcher exists (it asks the cluster who sends)
	early    *earlyStatuses
	bus      bus.Bus
	metrics  *nodeMetrics
	now      func() time.Time
	capacity int // an agent's capacity when it names none (a new routing engine's)
	// ctx is the node's lifetime, set by Node.Start before anything runs.
	ctx        context.Context
	goFunc     func(func()) bool
	addSub     func(bus.Subscription)
	fail       func(error)
	applyEarly func(ctx context.Context, id, providerID string)
}

type cluster struct {
	clusterDeps
	log  *slog.Logger
	node string // this node's id, as used in routing keys

	// Chosen once, at construction (newCluster): the one place where a
	// node alone and a node among others differ.
	elog    eventlog.Log // the ordered log
	snaps   *snapshots   // snapshots of the applied state (snapshot.go); nil on the local log
	accept  acceptor     // makes accepted events durable (journal.go)
	members membership   // heartbeats and node death (membership.go)

	// Apply state: touched only by the apply loop, or inside router.call
	// from it (the router goroutine owns the engine).
	offset int64 // last applied (the applier's)
	queued int64 // last queued for the applier (the bus handler's)
	halted bool  // a hole: nothing more is queued (hole.go; the bus handler's)
	// holeRecheck: how often a halted node looks for a snapshot past the
	// hole (hole.go).
	holeRecheck time.Duration
	// fault is set (to an error) when this node's store and routing can no
	// longer match the other nodes': the log delivered an entry past
	// queued+1 (entries this node never applied are gone from the stream:
	// a retention policy removed them), or the log was replaced. The node
	// then reports not ready.
	faultMu     sync.Mutex
	fault       error
	head        logHead       // the log's first entry as of start; Offset -1 = unknown
	gen         int64         // replaced logs this node adopted (store.LogPos)
	checkEvery  time.Duration // how often the head is checked while running
	recheck     chan struct{} // check the head now: the bus is back after an outage
	entries     chan logEntry
	storedOnce  atomic.Int64       // entries applied with what their accept stored (storeRun), for tests
	flush       chan chan struct{} // checkpoint now (Shutdown), then close the channel sent
	current     map[string]string
	recent      []string
	recentSet   map[string]bool
	dead        map[string]string
	dirty       map[string]bool // phones whose routing state changed since the last checkpoint
	lastCheck   time.Time
	sinceCheck  int
	startedID   string
	subGen      atomic.Int64 // the latest log subscription (subscribeLog)
	caughtUp    atomic.Bool
	caughtUpCh  chan struct{} // closed when caughtUp becomes true
	membersUp   bool          // members started (start's)
	pendingLock sync.Mutex
	pending     map[string]*session // local sessions by id, until their "connected" is applied

	// Recently accepted sids and refs, so a retry that reaches this node
	// before the first copy is in the log reuses its id.
	acceptMu sync.Mutex
	accepted recentKeys

	// Admin changes whose answer waits until they are applied here
	// (waitApplied), by event id.
	waitMu  sync.Mutex
	waiters map[string]chan error

	adoptMu  sync.Mutex
	adopted  map[string]bool // nodes whose pending replies this node sends
	selfDead bool            // the log says this node is dead: another sends its replies
}

func nodeWord(node string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '#' || r == ' ' {
			return '_'
		}
		return r
	}, node)
}

// newCluster restores the node's routing state from its store and
// returns the machinery that runs it on elog. local is elog when it is the
// node's local log, nil when other nodes share the log (the stream log):
// only then does the node journal what it accepts (the local log is its
// own journal) and watch other nodes' heartbeats.
func newCluster(n *Node, elog eventlog.Log, local *eventlog.Local) (*cluster, error) {
	c := &cluster{
		clusterDeps: clusterDeps{
			store: n.store, router: n.router, early: &n.early, bus: n.bus, metrics: n.metrics,
			now: n.now, capacity: n.opts.DefaultCapacity,
			goFunc: n.goFunc, addSub: n.addSub, fail: n.fail, applyEarly: n.applyEarly,
		},
		log:         n.logBase.With("component", "cluster"),
		node:        nodeWord(n.opts.Node),
		offset:      -1,
		entries:     make(chan logEntry, 4*maxRun),
		flush:       make(chan chan struct{}),
		current:     map[string]string{},
		recentSet:   map[string]bool{},
		dead:        map[string]string{},
		dirty:       map[string]bool{},
		pending:     map[string]*session{},
		accepted:    newRecentKeys(acceptWindow),
		waiters:     map[string]chan error{},
		adopted:     map[string]bool{},
		head:        logHead{Offset: -1},
		recheck:     make(chan struct{}, 1),
		checkEvery:  logCheckEvery,
		holeRecheck: holeRecheck,
		elog:        elog,
		caughtUpCh:  make(chan struct{}),
	}
	n.router.graceOver = c.expire
	n.router.reannounce = c.reannounce
	n.router.answerOver = c.answerTimeout
	n.router.changed = func(phone string) { c.dirty[phone] = true }
	if local == nil {
		c.accept = newJournal(c)
		c.members = newHeartbeats(c)
	} else {
		c.accept = direct{local}
		c.members = alone{}
	}
	blob, err := n.store.LoadCheckpoint()
	if err != nil {
		return nil, err
	}
	var cp checkpoint
	cp.Offset = -1
	if blob != nil {
		if err := json.Unmarshal(blob, &cp); err != nil {
			return nil, fmt.Errorf("cluster checkpoint: %w", err)
		}
	}
	convs, err := storedConvs(n.store)
	if err != nil {
		return nil, err
	}
	c.restoreCheckpoint(cp, convs)
	c.log.Info("cluster state restored", "offset", cp.Offset, "conversations", len(convs), "agents", len(cp.Agents))
	return c, nil
}

// start subscribes to the log, announces the node and checks that the
// log is the one its checkpoint describes.
//
// It may fail (the broker is away) and be called again (Node.subscribe).
func (c *cluster) start(ctx context.Context) error {
	if !c.membersUp {
		if err := c.members.start(ctx); err != nil {
			return err
		}
		c.membersUp = true
	}
	// Entries wait at the gate until the log's head is checked.
	gate := make(chan struct{})
	logSub, err := c.subscribeLog(ctx, gate)
	if err != nil {
		return err
	}
	// Everything before our "started" event is history: once it is
	// applied, this node has caught up. It is also what makes the log
	// non-empty, so that its head can be read.
	if err := c.announce(ctx); err != nil {
		logSub.Close()
		return err
	}
	hctx, cancel := context.WithTimeout(ctx, publishWait)
	first, err := c.elog.Head(hctx)
	cancel()
	watch := true
	switch {
	case errors.Is(err, eventlog.ErrNoHead):
		c.log.Warn("the bus cannot read a stream's head: a replaced log will not be detected")
		watch = false
	case err != nil:
		logSub.Close()
		return fmt.Errorf("read the log's first entry: %w", err)
	default:
		cur := headOf(first.Offset, first.Key, first.Body)
		if c.offset >= 0 && c.head.Offset >= 0 && c.head.replacedBy(cur) {
			// The broker lost the log (or it was deleted) and this is a
			// new one: replay it from its start.
			logSub.Close()
			c.log.Warn("cluster log was replaced (the broker lost it, or it was deleted): restoring routing through the new log and replaying it from its start; events only the old log held reach this node only if it had applied them (docs/architecture.md, failure cases)",
				"applied_up_to", c.offset, "old_first", c.head, "new_first", cur)
			if err := c.adoptLog(ctx, cur); err != nil {
				return err
			}
			if logSub, err = c.subscribeLog(ctx, gate); err != nil {
				return err
			}
			// Caught up means past what adoptLog published too: announce
			// the start again, after it.
			if err := c.announce(ctx); err != nil {
				logSub.Close()
				return err
			}
		}
		c.head = cur
		if c.snaps.needed(c.offset, cur.Offset) {
			// The log no longer holds this node's next entry: start from a
			// snapshot (snapshot.go), or report the hole (apply).
			if err := c.loadSnapshot(ctx, cur.Offset); err != nil {
				c.log.Error("the log's start was removed and no snapshot covers it: this node reports not ready", "applied_up_to", c.offset, "log_first", cur.Offset, "err", err)
			} else {
				// Read the log from after the snapshot, not through the
				// entries it already holds; and the snapshot may already
				// reflect our "started": announce the start again, after it.
				logSub.Close()
				if logSub, err = c.subscribeLog(ctx, gate); err != nil {
					return err
				}
				if err := c.announce(ctx); err != nil {
					logSub.Close()
					return err
				}
			}
		}
	}
	c.log.Info("replaying the log", "log", c.elog.Name(), "from", c.offset+1)
	close(gate)
	c.addSub(logSub)
	c.goFunc(func() { c.applier(ctx) })
	c.goFunc(func() { c.accept.run(ctx) })
	if watch {
		c.goFunc(func() { c.watchLog(ctx) })
	}
	return nil
}

// announce publishes this node's start: once it is applied, the node has
// caught up (membership.go).
func (c *cluster) announce(ctx context.Context) error {
	c.startedID = c.store.NewID()
	if err := c.publish(ctx, keyNode(c.node), routeEvent{ID: c.startedID, Node: c.node, State: "started", By: c.node, At: c.now().UnixMilli()}); err != nil {
		return fmt.Errorf("announce node: %w", err)
	}
	return nil
}

// subscribeLog subscribes to the log after the last applied offset.
// Entries wait until gate is closed.
func (c *cluster) subscribeLog(ctx context.Context, gate <-chan struct{}) (eventlog.Subscription, error) {
	// Only the latest subscription applies: one closed for another (after
	// a snapshot or a replaced log) may still hand over an entry it had.
	gen := c.subGen.Add(1)
	sub, err := c.elog.Subscribe(ctx, c.offset+1, func(ctx context.Context, e eventlog.Entry) error {
		select {
		case <-gate:
			if c.subGen.Load() != gen {
				return nil
			}
			return c.apply(ctx, e)
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to the log: %w", err)
	}
	return sub, nil
}

// setFault records the first fault (see fault).
func (c *cluster) setFault(err error) {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	if c.fault == nil {
		c.fault = err
	}
}

func (c *cluster) faulted() error {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	return c.fault
}

// ready reports whether the node has caught up with the log.
func (c *cluster) ready() error {
	if err := c.faulted(); err != nil {
		return err
	}
	if !c.caughtUp.Load() {
		return errors.New("catching up with the log")
	}
	return nil
}
