package switchboard

// Cluster mode (-amqp): several nodes, one team.
//
// Every event that changes a conversation or routing — inbound SMS, replies,
// delivery statuses, agent presence, releases, grace expiries, node starts
// and deaths — is published to the "switchboard" exchange and lands in one
// RabbitMQ stream, the log. Every node consumes the whole log, in the same
// order, and applies each event idempotently: its LevelDB store converges to
// the same conversations, and its routing engine (a deterministic state
// machine fed only by log events and the times they carry) makes the same
// assignments as every other node, without talking to them. The node that
// hosts an agent's WebSocket delivers the frames; the node that accepted a
// reply sends it.
//
// Durability: an event a node accepts (a webhook, a reply) is written to
// its local journal (fsynced) while it is published with confirms; the
// webhook or the agent is answered once the journal has it. Journal entries are
// published again until the node sees them in the log, so a broker outage
// or a node restart loses nothing. Applying an event twice changes nothing.
//
// Restarts: the apply loop checkpoints the routing state (agents,
// conversation assignments, the waiting line) with the log offset it
// reflects, in one atomic write; a restarted node loads the checkpoint and
// resumes the log after that offset. A new node starts from the first
// offset. A node is ready once it has applied its own "started" event.
// The checkpoint also names the log's first entry: a node that finds
// another first entry (the log was deleted, or the broker lost it) restores
// its routing state through the new log and replays it from its start
// (adoptLog), and a running node that finds it fails so that it is
// restarted (start, watchLog).
//
// Node death: nodes publish heartbeats (not in the log). When a node that
// hosts agents falls silent, another node publishes route.node.<n> "dead";
// every node then treats that node's agents as disconnected (their grace
// period starts), and the first node that declared it dead sends the
// replies it had accepted but not yet handed to Twilio.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/route"
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
var logBindings = []string{"sms.in.#", "sms.out.#", "sms.status.#", "agent.presence.#", "route.#"}

// BrokerNames returns the exchanges and durable queues that nodes declare on
// the broker for exchange (-amqp-exchange): everything to delete to remove a
// cluster's state from RabbitMQ. Private queues are exclusive and vanish
// with their connection.
func BrokerNames(exchange string) (exchanges, queues []string) {
	if exchange == "" {
		exchange = "switchboard"
	}
	return []string{exchange, exchange + ".dlx"},
		[]string{exchange + ".log", exchange + "." + navStream, exchange + ".dead"}
}

// checkpoint is the routing state saved with the log offset it reflects.
type checkpoint struct {
	Offset  int64                 `json:"offset"` // last applied; -1 = none
	Agents  []route.AgentSnapshot `json:"agents"`
	Current map[string]string     `json:"current"` // agent → session of its latest connection
	Recent  []string              `json:"recent"`  // ids of the last route/presence events applied
	Dead    map[string]string     `json:"dead"`    // dead node → node that adopted its replies
	Head    *logHead              `json:"head,omitempty"`
	Gen     int64                 `json:"gen,omitempty"` // replaced logs adopted (store.LogPos)
}

// logHead identifies a log: its first entry's offset and a digest of that
// entry. A stream that was deleted and declared again (by hand, or by a
// broker that lost its data) starts over at offset 0 with other entries;
// offsets alone would make the node skip them as already applied.
type logHead struct {
	Offset int64  `json:"offset"`
	Sum    string `json:"sum"` // hex SHA-256 (first 16 bytes) of the entry's key and body
}

func headOf(d bus.Delivery) logHead {
	h := sha256.New()
	h.Write([]byte(d.Key))
	h.Write([]byte{0})
	h.Write(d.Body)
	return logHead{Offset: d.Offset, Sum: hex.EncodeToString(h.Sum(nil)[:16])}
}

// replacedBy reports whether a log whose first entry is now cur cannot be
// the log whose first entry was h. A first entry further on is the same
// log with its oldest entries removed (a retention policy: the apply loop
// reports a hole if this node had not applied them).
func (h logHead) replacedBy(cur logHead) bool {
	return cur.Offset < h.Offset || (cur.Offset == h.Offset && cur.Sum != h.Sum)
}

type cluster struct {
	n    *Node
	log  *slog.Logger
	node string // this node's id, as used in routing keys

	// Apply state: touched only by the apply loop, or inside router.call
	// from it (the router goroutine owns the engine).
	offset int64 // last applied (the applier's)
	queued int64 // last queued for the applier (the bus handler's)
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
	flush       chan chan struct{} // checkpoint now (Shutdown), then close the channel sent
	current     map[string]string
	recent      []string
	recentSet   map[string]bool
	dead        map[string]string
	dirty       map[string]bool // phones whose routing state changed since the last checkpoint
	applied     []string        // journal ids seen in the log since the last checkpoint
	lastCheck   time.Time
	sinceCheck  int
	startedID   string
	caughtUp    atomic.Bool
	pendingLock sync.Mutex
	pending     map[string]*session // local sessions by id, until their "connected" is applied

	// Heartbeats.
	hbMu      sync.Mutex
	lastSeen  map[string]time.Time
	declared  map[string]time.Time
	backAt    time.Time // when our own heartbeats came back after an outage
	startedAt time.Time

	// Recently accepted sids and refs, so a retry that reaches this node
	// before the first copy is in the log reuses its id.
	acceptMu sync.Mutex
	accepted map[string]acceptedID

	// Journal entries whose publish failed or was skipped (the broker
	// away), until a read of the journal no longer finds them (they were
	// seen in the log and trimmed).
	failMu sync.Mutex
	failed map[string]bool
	scans  atomic.Int64 // journal reads by the republisher, for tests

	adoptMu  sync.Mutex
	adopted  map[string]bool // nodes whose pending replies this node sends
	selfDead bool            // the log says this node is dead: another sends its replies
}

type acceptedID struct {
	id   string
	at   time.Time
	what string // a digest of the content (replies: phone and text)
}

func nodeWord(node string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '#' || r == ' ' {
			return '_'
		}
		return r
	}, node)
}

func newCluster(n *Node) (*cluster, error) {
	c := &cluster{
		n:          n,
		log:        n.logBase.With("component", "cluster"),
		node:       nodeWord(n.opts.Node),
		offset:     -1,
		entries:    make(chan logEntry, 4*maxRun),
		flush:      make(chan chan struct{}),
		current:    map[string]string{},
		recentSet:  map[string]bool{},
		dead:       map[string]string{},
		dirty:      map[string]bool{},
		pending:    map[string]*session{},
		lastSeen:   map[string]time.Time{},
		declared:   map[string]time.Time{},
		accepted:   map[string]acceptedID{},
		adopted:    map[string]bool{},
		failed:     map[string]bool{},
		head:       logHead{Offset: -1},
		recheck:    make(chan struct{}, 1),
		checkEvery: logCheckEvery,
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
	c.offset = cp.Offset
	c.queued = cp.Offset
	if cp.Current != nil {
		c.current = cp.Current
	}
	for _, id := range cp.Recent {
		c.remember(id)
	}
	if cp.Dead != nil {
		c.dead = cp.Dead
	}
	if cp.Head != nil {
		c.head = *cp.Head
	}
	c.gen = cp.Gen
	for dead, by := range c.dead {
		if by == c.node {
			c.adopted[dead] = true
		}
	}
	var convs []route.Conversation
	err = n.store.Conversations(func(s store.ConvState) error {
		convs = append(convs, route.Conversation{Phone: s.Phone, Agent: s.Agent, LastAgent: s.LastAgent, Waiting: s.Waiting, WaitSeq: s.WaitSeq})
		return nil
	})
	if err != nil {
		return nil, err
	}
	n.router.engine.Restore(convs, time.Unix(0, 0))
	n.router.engine.RestoreAgents(cp.Agents)
	c.log.Info("cluster state restored", "offset", cp.Offset, "conversations", len(convs), "agents", len(cp.Agents))
	return c, nil
}

// start subscribes to heartbeats and the log, announces the node and
// checks that the log is the one its checkpoint describes.
func (c *cluster) start(ctx context.Context) error {
	c.startedAt = c.n.now()
	hb, err := c.n.bus.Subscribe(ctx, bus.SubscribeOptions{Bindings: []string{"node.heartbeat.*"}}, c.onHeartbeat)
	if err != nil {
		return fmt.Errorf("subscribe heartbeats: %w", err)
	}
	c.n.subs = append(c.n.subs, hb)
	// Entries wait at the gate until the log's head is checked.
	gate := make(chan struct{})
	logSub, err := c.subscribeLog(ctx, gate)
	if err != nil {
		return err
	}
	// Everything before our "started" event is history: once it is
	// applied, this node has caught up. It is also what makes the log
	// non-empty, so that its head can be read.
	c.startedID = c.n.store.NewID()
	if err := c.publish(ctx, keyNode(c.node), routeEvent{ID: c.startedID, Node: c.node, State: "started", By: c.node, At: c.n.now().UnixMilli()}); err != nil {
		logSub.Close()
		return fmt.Errorf("announce node: %w", err)
	}
	heads, _ := c.n.bus.(bus.StreamHead)
	if heads != nil {
		hctx, cancel := context.WithTimeout(ctx, publishWait)
		d, err := heads.Head(hctx, "log")
		cancel()
		if err != nil {
			logSub.Close()
			return fmt.Errorf("read the log's first entry: %w", err)
		}
		cur := headOf(d)
		if c.offset >= 0 && c.head.Offset >= 0 && c.head.replacedBy(cur) {
			// The broker lost the log (or it was deleted) and this is a
			// new one: replay it from its start.
			logSub.Close()
			c.log.Warn("cluster log was replaced (the broker lost it, or it was deleted): restoring routing through the new log and replaying it from its start; events only the old log held reach this node only if it had applied them (README: Limits)",
				"applied_up_to", c.offset, "old_first", c.head, "new_first", cur)
			if err := c.adoptLog(ctx, cur); err != nil {
				return err
			}
			if logSub, err = c.subscribeLog(ctx, gate); err != nil {
				return err
			}
		}
		c.head = cur
	} else {
		c.log.Warn("the bus cannot read a stream's head: a replaced log will not be detected")
	}
	c.log.Info("cluster: replaying the log", "from", c.offset+1)
	close(gate)
	c.n.subs = append(c.n.subs, logSub)
	c.n.goFunc(func() { c.applier(ctx) })
	c.n.goFunc(func() { c.heartbeats(ctx) })
	c.n.goFunc(func() { c.republish(ctx) })
	if heads != nil {
		c.n.goFunc(func() { c.watchLog(ctx, heads) })
	}
	return nil
}

// adoptLog makes a replaced log this node's log (start). The node's routing
// state comes from the old log, which other nodes may have applied further
// or less far: applied on top of it, the new log could make this node
// decide unlike them. So the node first publishes what it knew into the
// new log, a route.restore for each conversation an agent held or that
// waited (waiting ones in their order), then forgets its routing state and
// replays the new log from its start, at the next log generation (its
// stored messages are fresh again there, see store.LogPos). Every node
// does the same, and each conversation takes the first restore of it that
// the new log has not decided otherwise (route.Engine.Adopt): all nodes
// end with the same routing state, and agents keep their conversations.
//
// The deaths of nodes whose replies this node sent are published again
// too, so that it goes on sending them.
//
// A crash before the reset is saved adopts again at the next start
// (restores repeat, harmlessly); after it, the node replays the new log.
func (c *cluster) adoptLog(ctx context.Context, cur logHead) error {
	var restores []routeEvent
	err := c.route(ctx, func() {
		e := c.n.router.engine
		at := c.n.now().UnixMilli()
		for _, phone := range e.Waiting() {
			conv := e.Conversation(phone)
			restores = append(restores, routeEvent{Phone: phone, Waiting: true, LastAgent: conv.LastAgent, By: c.node, At: at})
		}
		for _, a := range e.SnapshotAgents() {
			for _, phone := range e.Conversations(a.Name) {
				restores = append(restores, routeEvent{Phone: phone, Agent: a.Name, By: c.node, At: at})
			}
		}
	})
	if err != nil {
		return err
	}
	for _, ev := range restores {
		ev.ID = c.n.store.NewID()
		if err := c.publish(ctx, keyRestore(ev.Phone), ev); err != nil {
			return fmt.Errorf("restore routing into the new log: %w", err)
		}
	}
	// The dead nodes whose replies this node sends: the new log must say
	// so too, or nobody sends the replies they left pending.
	var adopted []string
	c.adoptMu.Lock()
	for node, ok := range c.adopted {
		if ok {
			adopted = append(adopted, node)
		}
	}
	c.adoptMu.Unlock()
	slices.Sort(adopted)
	for _, node := range adopted {
		ev := routeEvent{ID: c.n.store.NewID(), Node: node, State: "dead", By: c.node, At: c.n.now().UnixMilli()}
		if err := c.publish(ctx, keyNode(node), ev); err != nil {
			return fmt.Errorf("restore a node death into the new log: %w", err)
		}
	}
	err = c.route(ctx, func() {
		c.n.router.engine = route.New(c.n.opts.DefaultCapacity)
		c.current = map[string]string{}
		c.recent, c.recentSet = nil, map[string]bool{}
		c.dead = map[string]string{}
		c.dirty = map[string]bool{}
	})
	if err != nil {
		return err
	}
	c.adoptMu.Lock()
	c.adopted = map[string]bool{}
	c.adoptMu.Unlock()
	c.offset, c.queued = -1, -1
	c.gen++
	c.head = cur
	blob, _ := json.Marshal(checkpoint{Offset: -1, Current: c.current, Dead: c.dead, Head: &cur, Gen: c.gen})
	if err := c.n.store.ResetRouting(ctx, blob); err != nil {
		return err
	}
	c.log.Info("cluster: routing restored into the new log", "conversations", len(restores), "generation", c.gen)
	return nil
}

// subscribeLog subscribes to the log after the last applied offset.
// Deliveries wait until gate is closed (nil: no wait).
func (c *cluster) subscribeLog(ctx context.Context, gate <-chan struct{}) (bus.Subscription, error) {
	h := c.apply
	if gate != nil {
		h = gated(gate, c.apply)
	}
	sub, err := c.n.bus.Subscribe(ctx, bus.SubscribeOptions{
		Queue:    "log",
		Bindings: logBindings,
		Stream:   true,
		Offset:   c.offset + 1,
		// A poison event must not stop the log: after a few tries it is
		// dead-lettered (and logged), like any other consumer's.
		MaxAttempts: 5,
		RetryDelay:  100 * time.Millisecond,
	}, h)
	if err != nil {
		return nil, fmt.Errorf("subscribe to the log: %w", err)
	}
	return sub, nil
}

// watchLog checks every checkEvery that the log still starts with the
// entry it started with. A broker that lost its data (or an operator who
// deleted the log) gives the nodes a new log whose offsets start over: a
// running node would wait for offsets it has already applied and skip
// the new entries. The node then fails (Node.Failed): restarted, it
// replays the new log (start).
//
// It also checks as soon as its own heartbeats come back after an outage
// (recheck). While the log is empty (a new one) Head waits for its first
// entry, and after a failed read (the broker away) the next one follows
// within a second: so after a reconnect to a broker that lost the log, the
// node notices at the new log's first entry, before the new log can reach
// the offsets its subscription waits for.
func (c *cluster) watchLog(ctx context.Context, heads bus.StreamHead) {
	retry := min(time.Second, c.checkEvery)
	wait := c.checkEvery
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-c.recheck:
		}
		hctx, cancel := context.WithTimeout(ctx, c.checkEvery)
		d, err := heads.Head(hctx, "log")
		cancel()
		if err != nil {
			// The broker is away or still starting, the log is empty, or
			// it is missing: this node's consumer declares it again (a new
			// log), whose first entry the next read finds.
			wait = retry
			continue
		}
		wait = c.checkEvery
		cur := headOf(d)
		if !c.head.replacedBy(cur) {
			continue
		}
		err = fmt.Errorf("cluster log replaced: its first entry changed (offset %d, %s → offset %d, %s); the broker lost it or it was deleted, and this node cannot follow the new log while running: restart it to replay the new log (README: Limits)",
			c.head.Offset, c.head.Sum, cur.Offset, cur.Sum)
		c.setFault(err)
		c.n.fail(err)
		return
	}
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
		return errors.New("catching up with the cluster log")
	}
	return nil
}

func (c *cluster) publish(ctx context.Context, key string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	return c.n.publish(ctx, key, v)
}

// append makes an event this node accepted durable in the journal and
// publishes it. The journal write and the publish run side by side, so the
// event reaches the log without waiting for the fsync; append returns once
// the journal has it and the publish is done or failed (a publish that
// fails is retried by the republisher). An event can reach the log before
// its journal entry is written; the entry is then trimmed at a later
// checkpoint, or republished once and applied as a duplicate, which
// changes nothing.
func (c *cluster) append(ctx context.Context, id, key string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var published atomic.Bool
	done := make(chan struct{})
	if c.n.bus.Ready() != nil {
		// The broker is away: the journal will have it; the republisher
		// sends it when the broker is back. Do not keep Twilio or the
		// agent waiting.
		close(done)
	} else {
		go func() {
			defer close(done)
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishWait)
			defer cancel()
			start := c.n.now()
			if err := c.n.bus.Publish(pctx, key, body); err != nil {
				c.log.Warn("publish to the log failed; the journal will retry", "key", key, "id", id, "err", err)
				return
			}
			published.Store(true)
			c.n.metrics.busLatency.Observe(c.n.now().Sub(start))
		}()
	}
	err = c.n.store.PutJournal(ctx, store.JournalEntry{ID: id, Key: key, Body: body, At: c.n.now()})
	<-done
	if err == nil && !published.Load() {
		// Only now that the entry is in the journal: a read of the journal
		// that does not find it forgets the failure.
		c.publishFailed(id)
	}
	return err
}

// publishFailed notes that journal entry id may not have reached the log.
func (c *cluster) publishFailed(ids ...string) {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	for _, id := range ids {
		c.failed[id] = true
	}
}

// republish publishes journal entries that have not shown up in the log:
// those older than republishAfter, read every journalSweepEvery while
// entries whose publish failed are in the journal (at start: everything
// in it), and every journalScanEvery otherwise.
func (c *cluster) republish(ctx context.Context) {
	t := time.NewTicker(journalSweepEvery)
	defer t.Stop()
	first := true
	var lastScan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.failMu.Lock()
		failures := len(c.failed)
		c.failMu.Unlock()
		now := c.n.now()
		if !first && failures == 0 && now.Sub(lastScan) < journalScanEvery {
			continue
		}
		var due []store.JournalEntry
		present := map[string]bool{}
		err := c.n.store.Journal(func(e store.JournalEntry) error {
			present[e.ID] = true
			if now.Sub(e.At) >= republishAfter {
				due = append(due, e)
			}
			return nil
		})
		if err != nil {
			c.log.Error("read journal", "err", err)
			continue
		}
		c.failMu.Lock()
		if first {
			for id := range present {
				c.failed[id] = true // written before this start
			}
		}
		for id := range c.failed {
			if !present[id] {
				delete(c.failed, id) // in the log and trimmed
			}
		}
		c.failMu.Unlock()
		first, lastScan = false, now
		c.scans.Add(1)
		if !c.republishAll(ctx, due) {
			ids := make([]string, len(due))
			for i, e := range due {
				ids[i] = e.ID
			}
			c.publishFailed(ids...)
		}
	}
}

// republishAll publishes entries, oldest first per routing key: entries of
// one key one after another (the log keeps their order), up to
// republishers keys at a time, so that a journal that grew during a broker
// outage drains quickly. It stops at the first failure (the broker is
// away: the next sweep tries again), publishing nothing of that key after
// it, and reports whether every entry was published.
func (c *cluster) republishAll(ctx context.Context, entries []store.JournalEntry) bool {
	const republishers = 64
	var keys []string
	byKey := map[string][]store.JournalEntry{}
	for _, e := range entries { // oldest id first
		if byKey[e.Key] == nil {
			keys = append(keys, e.Key)
		}
		byKey[e.Key] = append(byKey[e.Key], e)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	sem := make(chan struct{}, republishers)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, key := range keys {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, e := range byKey[key] {
				pctx, cancel := context.WithTimeout(ctx, publishWait)
				err := c.n.bus.Publish(pctx, e.Key, e.Body)
				cancel()
				if err != nil {
					if ctx.Err() == nil {
						c.log.Warn("republish journal entry", "id", e.ID, "err", err)
					}
					failed.Store(true)
					stop()
					return
				}
			}
		}()
	}
	wg.Wait()
	return !failed.Load() && ctx.Err() == nil
}

// errStopping stops the apply loop without advancing the offset: the
// event is applied again after the restart.
var errStopping = errors.New("cluster: node stopping")

// route runs f on the router goroutine for the apply loop.
func (c *cluster) route(ctx context.Context, f func()) error {
	if !c.n.router.call(ctx, f) {
		return errStopping
	}
	return nil
}

// remember records an applied route/presence event id. Duplicates of such
// events (republished after a lost confirm) are skipped while their id is
// among the last recentIDs.
func (c *cluster) remember(id string) bool {
	if id == "" || c.recentSet[id] {
		return false
	}
	c.recentSet[id] = true
	c.recent = append(c.recent, id)
	if len(c.recent) > recentIDs {
		delete(c.recentSet, c.recent[0])
		c.recent = c.recent[1:]
	}
	return true
}

// logEntry is one decoded log event waiting for the applier.
type logEntry struct {
	offset int64
	key    string
	msg    *messageEvent  // sms.*
	pres   *presenceEvent // agent.presence.*
	route  *routeEvent    // route.*
	bad    error          // undecodable: skipped, but its offset counts
}

// apply is the log consumer. It only decodes and queues: the applier
// stores and routes entries in runs, and it, not the bus, remembers how far
// the log is applied (the checkpoint), so acking at once is safe.
func (c *cluster) apply(ctx context.Context, d bus.Delivery) error {
	if d.Offset <= c.queued {
		return nil // already queued (a redelivery after a reconnect)
	}
	// A stream's offsets are consecutive and this node reads every entry,
	// so a jump means entries were removed before this node read them.
	if d.Offset > c.queued+1 && c.faulted() == nil {
		c.setFault(fmt.Errorf("cluster log: entries %d to %d were removed from the stream before this node applied them (a retention policy on the log?); this node cannot match the others (README: Limits, under \"Several nodes: one ordered log\")", c.queued+1, d.Offset-1))
		c.log.Error("cluster log has a hole: this node reports not ready", "missing_from", c.queued+1, "missing_to", d.Offset-1)
	}
	e := logEntry{offset: d.Offset, key: d.Key}
	var v any
	switch {
	case strings.HasPrefix(d.Key, "sms."):
		e.msg = &messageEvent{}
		v = e.msg
	case strings.HasPrefix(d.Key, "agent.presence."):
		e.pres = &presenceEvent{}
		v = e.pres
	case strings.HasPrefix(d.Key, "route."):
		e.route = &routeEvent{}
		v = e.route
	}
	if v != nil {
		e.bad = decodeJSON(d, v)
	}
	select {
	case c.entries <- e:
		c.queued = d.Offset
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxRun bounds how many log entries the applier handles in one run.
const maxRun = 256

// applier applies queued log entries in order, in runs, until ctx ends.
func (c *cluster) applier(ctx context.Context) {
	run := make([]logEntry, 0, maxRun)
	for {
		run = run[:0]
		select {
		case e := <-c.entries:
			run = append(run, e)
		case done := <-c.flush:
			if c.sinceCheck > 0 {
				c.checkpoint(ctx)
			}
			close(done)
			continue
		case <-ctx.Done():
			return
		}
	more:
		for len(run) < maxRun {
			select {
			case e := <-c.entries:
				run = append(run, e)
			default:
				break more
			}
		}
		for {
			err := c.applyRun(ctx, run)
			if err == nil {
				break
			}
			if ctx.Err() != nil || errors.Is(err, errStopping) {
				return // not applied: the restarted node replays it
			}
			c.log.Error("apply log entries; retrying", "from", run[0].offset, "err", err)
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return
			}
		}
	}
}

// applyRun stores a run of entries in one write, routes them in one router
// call, in log order, then does what follows outside the router.
func (c *cluster) applyRun(ctx context.Context, run []logEntry) error {
	// 1. Store.
	var items []store.LogItem
	itemOf := make([]int, len(run))
	for i := range run {
		itemOf[i] = -1
		e := &run[i]
		if e.bad != nil || e.msg == nil {
			continue
		}
		ev := e.msg
		pos := store.LogPos(c.gen, e.offset)
		switch {
		case strings.HasPrefix(e.key, "sms.in."):
			items = append(items, store.LogItem{Inbound: &store.Inbound{
				ID: ev.ID, Sid: ev.Sid, Phone: ev.Phone, To: ev.To, Text: ev.Text, FromCountry: ev.FromCountry,
				Received: time.UnixMilli(ev.Received), LogPos: pos, Media: ev.Media, OptOut: ev.OptOut,
			}})
		case strings.HasPrefix(e.key, "sms.out."):
			items = append(items, store.LogItem{Reply: &store.Reply{
				ID: ev.ID, Phone: ev.Phone, Agent: ev.Agent, Ref: ev.Ref, Text: ev.Text,
				Sent: time.UnixMilli(ev.Received), LogPos: pos, Origin: ev.Node,
			}})
		case strings.HasPrefix(e.key, "sms.status."):
			if !ev.Status.Valid() || ev.Status == protocol.StatusReceived {
				e.bad = fmt.Errorf("status %q is not a delivery status", ev.Status)
				continue
			}
			if ev.ID == "" {
				// A callback that reached a node before the send was known
				// there: resolve it, or hold it until the send shows up.
				var found protocol.Message
				if c.n.early.hold(ev.ProviderID, ev.Status, ev.Detail, c.n.now(), func() bool {
					var err error
					found, err = c.n.store.MessageByProviderID(ev.ProviderID)
					return err == nil
				}) {
					continue
				}
				ev.ID = found.ID
			}
			items = append(items, store.LogItem{Status: &store.LogStatus{ID: ev.ID, Status: ev.Status, ProviderID: ev.ProviderID, ErrorCode: store.ErrorCodeOf(ev.Detail)}})
		default:
			continue
		}
		itemOf[i] = len(items) - 1
	}
	var results []store.LogResult
	if len(items) > 0 {
		var err error
		if results, err = c.n.store.ApplyLog(store.WithoutSync(ctx), items); err != nil {
			return err
		}
	}

	// 2. Route, in log order, in one trip to the router.
	var post []func()
	err := c.route(ctx, func() {
		r := c.n.router
		for i := range run {
			e := &run[i]
			if e.bad != nil {
				continue
			}
			if k := itemOf[i]; k >= 0 {
				res := results[k]
				if res.Err != nil {
					e.bad = res.Err
					continue
				}
				post = append(post, c.routeMessage(r, e, res)...)
				continue
			}
			if e.pres != nil {
				c.routePresence(r, e.pres)
			}
			if e.route != nil {
				post = append(post, c.routeRoute(r, e)...)
			}
		}
	})
	if err != nil {
		return err
	}

	// 3. What follows, outside the router.
	for _, e := range run {
		if e.bad != nil {
			// Bad input from outside (a shop or another service publishing
			// on our keys): skipped, loudly, never blocking the log.
			c.log.Error("log event refused", "key", e.key, "offset", e.offset, "err", e.bad)
		}
		if e.msg != nil && e.msg.Node == c.node {
			id := e.msg.ID
			if strings.HasPrefix(e.key, "sms.status.") {
				id = e.msg.EventID
			}
			if id != "" {
				c.applied = append(c.applied, id)
			}
		}
	}
	c.offset = run[len(run)-1].offset
	c.sinceCheck += len(run)
	for _, f := range post {
		f()
	}
	if c.sinceCheck >= checkpointEntries || c.n.now().Sub(c.lastCheck) >= checkpointEvery {
		c.checkpoint(ctx)
	}
	return nil
}

// routeMessage routes a stored sms.* entry. Runs on the router goroutine;
// returns what to do after the run.
func (c *cluster) routeMessage(r *router, e *logEntry, res store.LogResult) []func() {
	ev, msg := e.msg, res.Msg
	switch {
	case strings.HasPrefix(e.key, "sms.in."):
		if res.Fresh {
			var born time.Time
			if ev.Born > 0 && ev.Node == c.node {
				born = time.Unix(0, ev.Born) // latency only means something where it was received
			}
			r.arriveAt(msg, uint64(e.offset+1), born, time.UnixMilli(ev.Received))
		}
	case strings.HasPrefix(e.key, "sms.out."):
		if res.Fresh {
			r.outbound(msg)
			if origin := ev.Node; c.sends(origin) {
				return []func(){func() { c.n.outbound.enqueue(msg, origin) }}
			}
		}
	case strings.HasPrefix(e.key, "sms.status."):
		if res.Fresh || msg.Status == ev.Status {
			// The node that sent the reply recorded the status before the
			// event came back: tell the agent now (status frames are idempotent).
			r.status(msg, ev.Detail)
		}
		if ev.ProviderID != "" {
			id, pid := msg.ID, ev.ProviderID
			return []func(){func() {
				// Applying a held callback writes and publishes: never in
				// the applier's way.
				if c.n.early.has(pid) {
					c.n.goFunc(func() { c.n.applyEarly(c.n.ctx, id, pid) })
				}
			}}
		}
	}
	return nil
}

// routePresence applies a presence event. Runs on the router goroutine.
func (c *cluster) routePresence(r *router, ev *presenceEvent) {
	if ev.ID == "" || ev.Session == "" || protocol.ValidAgentName(ev.Agent) != nil {
		c.log.Error("presence event without id, session or valid agent", "agent", ev.Agent)
		return
	}
	if !c.remember(ev.ID) {
		return
	}
	at := time.UnixMilli(ev.At)
	switch ev.State {
	case stateConnected:
		c.current[ev.Agent] = ev.Session
		epoch := r.engine.ConnectOn(ev.Agent, ev.Node, at)
		c.attach(*ev, epoch)
	case stateAvailable:
		if c.current[ev.Agent] == ev.Session {
			r.apply(r.engine.Available(ev.Agent, ev.Capacity, at), time.Time{})
		}
	case stateAway:
		if c.current[ev.Agent] == ev.Session {
			r.engine.Away(ev.Agent)
			r.loadDirty = true
		}
	case stateGone:
		if c.current[ev.Agent] == ev.Session {
			epoch := r.engine.Epoch(ev.Agent)
			if r.engine.Disconnect(ev.Agent, epoch) && ev.Node == c.node {
				c.graceTimer(ev.Agent, epoch)
			}
		}
	}
}

// saveNow has the applier save a checkpoint of what it has applied, if
// anything since the last one, and waits for it: a node that stops
// gracefully then restarts exactly where it stopped, and should the broker
// lose the log meanwhile, its restores (adoptLog) are complete.
func (c *cluster) saveNow(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	done := make(chan struct{})
	select {
	case c.flush <- done:
	case <-ctx.Done():
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// checkpoint saves the routing state with the offset it reflects, and
// forgets journal entries the log now has. It is the apply loop's synced
// write: the store writes of the events before it (made without their own
// fsync, see store.WithoutSync) are durable once it is, because LevelDB's
// journal is one sequential file. After a crash the node resumes after the
// checkpoint's offset and re-applies, idempotently, whatever came later.
func (c *cluster) checkpoint(ctx context.Context) {
	var blob []byte
	var convs []store.ConvState
	c.n.router.call(ctx, func() {
		cp := checkpoint{Offset: c.offset, Agents: c.n.router.engine.SnapshotAgents(), Current: c.current, Recent: c.recent, Dead: c.dead, Head: &c.head, Gen: c.gen}
		for phone := range c.dirty {
			s := c.n.router.engine.Conversation(phone)
			convs = append(convs, store.ConvState{Phone: s.Phone, Agent: s.Agent, LastAgent: s.LastAgent, Waiting: s.Waiting, WaitSeq: s.WaitSeq})
		}
		blob, _ = json.Marshal(cp) // marshalled here: the maps are the router's
	})
	if blob == nil {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.n.store.SaveCheckpoint(wctx, convs, blob); err != nil {
		c.log.Error("checkpoint", "err", err)
		return
	}
	c.dirty = map[string]bool{}
	if len(c.applied) > 0 {
		if err := c.n.store.DeleteJournal(wctx, c.applied...); err != nil {
			c.log.Warn("trim journal", "err", err)
		} else {
			c.applied = c.applied[:0]
		}
	}
	c.sinceCheck = 0
	c.lastCheck = c.n.now()
}

func decodeJSON(d bus.Delivery, v any) error {
	if err := json.Unmarshal(d.Body, v); err != nil {
		return bus.Permanent(fmt.Errorf("decode %s: %w", d.Key, err))
	}
	return nil
}

// sends reports whether this node sends replies accepted by origin: its
// own unless the log says it is dead (until it says it is alive again),
// and those of the dead nodes it adopted.
func (c *cluster) sends(origin string) bool {
	c.adoptMu.Lock()
	defer c.adoptMu.Unlock()
	if origin == c.node || origin == "" {
		return !c.selfDead
	}
	return c.adopted[origin]
}

// hearsBroker reports whether this node heard its own heartbeat within
// leaseFor of now.
func (c *cluster) hearsBroker(now time.Time) bool {
	c.hbMu.Lock()
	defer c.hbMu.Unlock()
	return now.Sub(c.lastSeen[c.node]) < leaseFor
}

// attach runs on the router goroutine when a connection is applied: the
// node hosting it starts using the session; other nodes close any older
// session of the same agent they host.
func (c *cluster) attach(ev presenceEvent, epoch uint64) {
	r := c.n.router
	if t := r.timers[ev.Agent]; t != nil {
		t.Stop()
		delete(r.timers, ev.Agent)
	}
	old := r.sessions[ev.Agent]
	var s *session
	if ev.Node == c.node {
		c.pendingLock.Lock()
		s = c.pending[ev.Session]
		delete(c.pending, ev.Session)
		c.pendingLock.Unlock()
	}
	if old != nil && old != s && old.id != ev.Session {
		old.enqueue(protocol.Frame{Type: protocol.TypeAlert, Text: "Signed in from another place; this session is closed."}, time.Time{})
		old.close(1008, "replaced by a newer session")
		delete(r.sessions, ev.Agent)
	}
	if s == nil {
		if old != nil && old.id == ev.Session {
			s = old // re-asserted after this node was thought dead
		} else {
			r.tellLost(ev.Agent, nil) // the node hosting it tells it
			r.n.metrics.agentsOnline.Set(int64(len(r.sessions)))
			return
		}
	}
	r.tellLost(ev.Agent, s)
	s.epoch = epoch
	r.sessions[ev.Agent] = s
	r.tellQueue(s)
	r.n.metrics.agentsOnline.Set(int64(len(r.sessions)))
	for _, phone := range r.engine.Conversations(ev.Agent) {
		r.sendAssigned(s, phone, time.Time{})
	}
}

// graceTimer publishes route.expire for agent's connection epoch when the
// grace period ends. Runs on the router goroutine.
func (c *cluster) graceTimer(agent string, epoch uint64) {
	r := c.n.router
	if t := r.timers[agent]; t != nil {
		t.Stop()
	}
	r.timers[agent] = time.AfterFunc(c.n.opts.Grace, func() {
		ev := routeEvent{ID: c.n.store.NewID(), Agent: agent, Epoch: epoch, By: c.node, At: c.n.now().UnixMilli()}
		if err := c.publish(c.n.ctx, keyExpire(agent), ev); err != nil && c.n.ctx.Err() == nil {
			c.log.Warn("publish grace expiry; retrying", "agent", agent, "err", err)
			r.do(c.n.ctx, func() { c.graceTimer(agent, epoch) })
		}
	})
}

// routeRoute applies a route.* event. Runs on the router goroutine;
// returns what to do after the run.
func (c *cluster) routeRoute(r *router, e *logEntry) []func() {
	key, ev := e.key, e.route
	if !c.remember(ev.ID) {
		return nil
	}
	at := time.UnixMilli(ev.At)
	switch {
	case strings.HasPrefix(key, "route.restore."):
		if protocol.Digits(ev.Phone) != strings.TrimPrefix(key, "route.restore.") || (ev.Agent != "" && protocol.ValidAgentName(ev.Agent) != nil) {
			e.bad = fmt.Errorf("restore of %q for agent %q does not match its key", ev.Phone, ev.Agent)
			return nil
		}
		effects := r.engine.Adopt(route.Conversation{Phone: ev.Phone, Agent: ev.Agent, LastAgent: ev.LastAgent, Waiting: ev.Waiting}, uint64(e.offset+1), at)
		if ev.Agent != "" && r.engine.Owner(ev.Phone) == ev.Agent && !r.engine.LoadOf(ev.Agent).Online && r.timers[ev.Agent] == nil && c.caughtUp.Load() {
			// Held by an agent no node has seen in this log yet: it has
			// its grace period to come back, as after a restart. (Until
			// caught up, the node's "started" event starts the timers.)
			c.graceTimer(ev.Agent, r.engine.Epoch(ev.Agent))
		}
		r.apply(effects, time.Time{})
	case strings.HasPrefix(key, "route.release."):
		if c.current[ev.Agent] == ev.Session {
			if effects, ok := r.engine.Release(ev.Agent, ev.Phone, at); ok {
				r.apply(effects, time.Time{})
			}
		}
	case strings.HasPrefix(key, "route.expire."):
		delete(r.timers, ev.Agent)
		if effects := r.engine.Expire(ev.Agent, ev.Epoch, at); len(effects) > 0 {
			c.log.Info("grace period over: conversations requeued", "agent", ev.Agent, "effects", len(effects))
			r.apply(effects, time.Time{})
			if ev.By == c.node {
				// No node hosts the agent any more, so none announced its
				// losses (router.announces): the node whose expiry took
				// effect does, once for the cluster.
				for _, e := range effects {
					if e.Kind == route.Released && r.sessions[e.Agent] == nil {
						r.n.publishAsync(keyReleased(e.Agent), assignmentEvent{Agent: e.Agent, Phone: e.Phone, Reason: e.Reason, At: at.UnixMilli()})
					}
				}
			}
		}
	case strings.HasPrefix(key, "route.node."):
		return c.routeNode(r, ev)
	}
	return nil
}

// routeNode applies a node start or death. Runs on the router goroutine.
func (c *cluster) routeNode(r *router, ev *routeEvent) []func() {
	switch ev.State {
	case "started":
		c.back(ev.Node)
		// Connections the engine still has on a node that just
		// (re)started are gone: it has no sessions yet.
		for agent, epoch := range r.engine.OnlineOn(ev.Node) {
			if r.engine.Disconnect(agent, epoch) && ev.Node == c.node {
				c.graceTimer(agent, epoch)
			}
		}
		if ev.Node != c.node || ev.ID != c.startedID {
			return nil
		}
		// Caught up. Grace timers of agents that went offline while no
		// node was watching (a whole-cluster restart) restart here.
		for agent, epoch := range r.engine.Offline() {
			if r.timers[agent] == nil {
				c.graceTimer(agent, epoch)
			}
		}
		return []func(){func() {
			c.checkpoint(c.n.ctx)
			c.caughtUp.Store(true)
			c.log.Info("cluster: caught up with the log", "offset", c.offset)
			c.n.outbound.sweep()
		}}
	case "alive":
		c.back(ev.Node)
		if ev.Node != c.node || ev.By != c.node {
			return nil
		}
		return []func(){func() {
			// Our replies stored until now were the adopter's to send: any
			// of them may be at the provider already, or on its way there.
			wait := c.n.outbound.handOver(true)
			c.log.Warn("cluster: sending this node's replies again", "after", wait)
		}}
	case "dead":
		if ev.Node == c.node {
			// Declared dead (we were stalled or cut off): another node
			// sends our replies from here in the log, until we say we are
			// alive. Then say so, and that every local session is here.
			c.adoptMu.Lock()
			c.selfDead = true
			c.adoptMu.Unlock()
			return []func(){func() {
				if !c.caughtUp.Load() {
					return // replaying: our "started" comes later in the log
				}
				c.log.Warn("cluster: this node was declared dead; saying it is alive")
				ev := routeEvent{ID: c.n.store.NewID(), Node: c.node, State: "alive", By: c.node, At: c.n.now().UnixMilli()}
				if err := c.publish(c.n.ctx, keyNode(c.node), ev); err != nil {
					c.log.Error("publish alive", "err", err)
				}
				c.reassert()
			}}
		}
		var post []func()
		for agent, epoch := range r.engine.OnlineOn(ev.Node) {
			if r.engine.Disconnect(agent, epoch) {
				c.graceTimer(agent, epoch) // it holds conversations
			}
			if ev.By == c.node {
				// Its node cannot say the agent is gone (agent.presence
				// of the contract): the node that declared it dead does.
				// Applied, the event changes nothing: the agent is
				// already offline.
				l := r.engine.LoadOf(agent)
				gone := presenceEvent{Agent: agent, Node: ev.Node, State: stateGone, Capacity: l.Capacity, Load: l.Active,
					At: ev.At, ID: c.n.store.NewID(), Session: c.current[agent]}
				post = append(post, func() { c.n.publishAsync(keyPresence(agent), gone) })
			}
		}
		if _, taken := c.dead[ev.Node]; !taken {
			c.dead[ev.Node] = ev.By
		}
		if c.dead[ev.Node] != c.node {
			return post
		}
		node := ev.Node
		// Adopted here, in log order: a "started" of the same node later
		// in this run must undo it.
		c.adoptMu.Lock()
		c.adopted[node] = true
		c.adoptMu.Unlock()
		return append(post, func() {
			// An attempt it started before it fell silent can still reach
			// the provider: wait that out, then look each reply up before
			// sending it (dispatcher.uncertain).
			wait := c.n.outbound.handOver(false)
			c.log.Warn("node declared dead: sending its pending replies", "node", node, "after", wait)
		})
	}
	return nil
}

// back records in log order that node is alive (it started, or said so
// after it was declared dead): it sends its own replies again, and whoever
// adopted them while it was dead stops (else every reply it accepts from
// now on would be sent twice). Runs on the router goroutine.
func (c *cluster) back(node string) {
	delete(c.dead, node)
	c.adoptMu.Lock()
	delete(c.adopted, node)
	if node == c.node {
		c.selfDead = false
	}
	c.adoptMu.Unlock()
}

// reassert publishes the connection of every local session again.
func (c *cluster) reassert() {
	var list []*session
	c.n.router.call(c.n.ctx, func() {
		for _, s := range c.n.router.sessions {
			list = append(list, s)
		}
	})
	for _, s := range list {
		c.n.goFunc(func() {
			c.presence(c.n.ctx, s, stateConnected, 0)
			if s.available.Load() {
				c.presence(c.n.ctx, s, stateAvailable, int(s.lastCapacity.Load()))
			}
		})
	}
}

// presence publishes a presence event for session s.
func (c *cluster) presence(ctx context.Context, s *session, state string, capacity int) error {
	ev := presenceEvent{
		Agent: s.agent, Node: c.node, State: state, Capacity: capacity,
		At: c.n.now().UnixMilli(), ID: c.n.store.NewID(), Session: s.id,
	}
	return c.publish(ctx, keyPresence(s.agent), ev)
}

// heartbeats publishes this node's heartbeat and declares silent nodes dead.
func (c *cluster) heartbeats(ctx context.Context) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, heartbeatEvery)
		c.n.bus.Publish(hctx, keyHeartbeat(c.node), []byte(`{"node":"`+c.node+`"}`))
		cancel()
		c.checkDead(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *cluster) onHeartbeat(_ context.Context, d bus.Delivery) error {
	node := strings.TrimPrefix(d.Key, "node.heartbeat.")
	now := c.n.now()
	c.hbMu.Lock()
	last, seen := c.lastSeen[node]
	c.lastSeen[node] = now
	c.hbMu.Unlock()
	if node == c.node && seen && now.Sub(last) > 2*heartbeatEvery {
		if now.Sub(last) >= 3*heartbeatEvery {
			// We were deaf (see mayDeclare): the others' silence since
			// then is not theirs.
			c.hbMu.Lock()
			c.backAt = now
			c.hbMu.Unlock()
		}
		// Back after an outage: the broker may have lost the log.
		select {
		case c.recheck <- struct{}{}:
		default:
		}
	}
	return nil
}

// checkDead declares dead the nodes that host agents and have been silent
// for deadAfter — but only while our own heartbeats come back, so a broker
// outage does not make every node declare every other dead.
func (c *cluster) checkDead(ctx context.Context) {
	if !c.caughtUp.Load() {
		return
	}
	now := c.n.now()
	if !c.mayDeclare(now) {
		return
	}
	hosts := map[string]bool{}
	c.n.router.call(ctx, func() {
		for _, a := range c.n.router.engine.SnapshotAgents() {
			if a.Online && a.Node != "" && a.Node != c.node {
				hosts[a.Node] = true
			}
		}
	})
	for _, node := range c.silent(now, hosts) {
		c.log.Warn("node silent: declaring it dead", "node", node)
		ev := routeEvent{ID: c.n.store.NewID(), Node: node, State: "dead", By: c.node, At: now.UnixMilli()}
		if err := c.publish(ctx, keyNode(node), ev); err != nil {
			c.log.Warn("publish node death", "node", node, "err", err)
		}
	}
}

// mayDeclare reports whether this node can tell at now that another is
// silent: its own heartbeats come back (it hears the broker), and it has
// run for deadAfter.
func (c *cluster) mayDeclare(now time.Time) bool {
	c.hbMu.Lock()
	defer c.hbMu.Unlock()
	return now.Sub(c.lastSeen[c.node]) < 3*heartbeatEvery && now.Sub(c.startedAt) >= deadAfter
}

// silent returns the hosts silent for deadAfter and not declared dead in
// the last 10*deadAfter, sorted, and marks them declared at now. Silence
// counts only while this node could hear: after an outage of its own
// (backAt; during a broker outage every node is silent, and the others
// reconnect up to a second or so after us) it counts from its return.
func (c *cluster) silent(now time.Time, hosts map[string]bool) []string {
	c.hbMu.Lock()
	defer c.hbMu.Unlock()
	var out []string
	for node := range hosts {
		heard := c.lastSeen[node]
		if c.backAt.After(heard) {
			heard = c.backAt
		}
		if now.Sub(heard) >= deadAfter && now.Sub(c.declared[node]) >= 10*deadAfter {
			c.declared[node] = now
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out
}

// digestOf is the content digest acceptedBefore compares.
func digestOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return string(h.Sum(nil))
}

// refConflict is what acceptedBefore returns for a key accepted recently
// with different content.
const refConflict = "\x00conflict"

// acceptedBefore returns the id given to key (a sid or an agent/ref) when
// this node accepted it recently, or "" — and otherwise remembers id with
// what (the content). Accepted before with another what: refConflict.
func (c *cluster) acceptedBefore(key, id, what string) string {
	c.acceptMu.Lock()
	defer c.acceptMu.Unlock()
	now := c.n.now()
	if a, ok := c.accepted[key]; ok && now.Sub(a.at) < time.Minute {
		if a.what != what {
			return refConflict
		}
		return a.id
	}
	if len(c.accepted) > 100000 {
		for k, a := range c.accepted {
			if now.Sub(a.at) >= time.Minute {
				delete(c.accepted, k)
			}
		}
	}
	c.accepted[key] = acceptedID{id: id, at: now, what: what}
	return ""
}

// inbound accepts a webhook's message in cluster mode: journaled (durable)
// and published; stored and routed when it comes back from the log.
func (c *cluster) inbound(ctx context.Context, in store.Inbound, born time.Time) (duplicate bool, err error) {
	if _, err := c.n.store.MessageBySid(in.Sid); err == nil {
		return true, nil
	}
	id := c.n.store.NewID()
	if prev := c.acceptedBefore("sid/"+in.Sid, id, ""); prev != "" {
		id = prev // a retry before the first copy reached the log: same event
	}
	msg := protocol.Message{
		ID: id, Phone: in.Phone, Direction: protocol.In, Text: in.Text,
		Received: born.UnixMilli(), Status: protocol.StatusReceived, FromCountry: in.FromCountry,
		Media: in.Media, OptOut: in.OptOut, // OptOut: the provider's kind; the store adds the keyword's
	}
	ev := messageEvent{Message: msg, Node: c.node, Born: born.UnixNano(), Sid: in.Sid, To: in.To}
	return false, c.append(ctx, id, keyIn(in.Phone), ev)
}

// reply accepts an agent's reply in cluster mode and returns its id.
func (c *cluster) reply(ctx context.Context, s *session, phone, ref, text string) (string, error) {
	if m, err := c.n.store.MessageByRef(s.agent, ref); err == nil {
		if m.Phone != phone || m.Text != text {
			return "", fmt.Errorf("cluster: reply %s/%s: %w", s.agent, ref, store.ErrRefConflict)
		}
		return m.ID, nil
	}
	id := c.n.store.NewID()
	if prev := c.acceptedBefore("ref/"+s.agent+"/"+ref, id, digestOf(phone, text)); prev != "" {
		if prev == refConflict {
			return "", fmt.Errorf("cluster: reply %s/%s: %w", s.agent, ref, store.ErrRefConflict)
		}
		return prev, nil
	}
	msg := protocol.Message{
		ID: id, Phone: phone, Direction: protocol.Out, Text: text, Agent: s.agent,
		Received: c.n.now().UnixMilli(), Status: protocol.StatusQueued,
	}
	return id, c.append(ctx, id, keyOut(phone), messageEvent{Message: msg, Node: c.node, Ref: ref})
}

// status publishes a delivery status change through the journal. id may be
// empty when only the provider's id is known (an early callback).
func (c *cluster) status(ctx context.Context, msg protocol.Message, st protocol.Status, providerID, detail string) error {
	eid := c.n.store.NewID()
	key := "sms.status.unknown"
	if msg.Phone != "" {
		key = keyStatus(msg.Phone)
	}
	m := protocol.Message{ID: msg.ID, Phone: msg.Phone, Direction: protocol.Out, Status: st, Agent: msg.Agent, Text: msg.Text, Received: msg.Received}
	return c.append(ctx, eid, key, messageEvent{Message: m, Node: c.node, ProviderID: providerID, Detail: detail, EventID: eid})
}

// connect registers a new local session and announces it.
func (c *cluster) connect(s *session) error {
	s.id = c.n.store.NewID()
	c.pendingLock.Lock()
	c.pending[s.id] = s
	c.pendingLock.Unlock()
	s.enqueue(protocol.Frame{Type: protocol.TypeAlert, Text: "How can I help you?"}, time.Time{})
	return c.presence(c.n.ctx, s, stateConnected, 0)
}

// disconnect forgets a local session and announces it is gone.
func (c *cluster) disconnect(s *session) {
	c.pendingLock.Lock()
	delete(c.pending, s.id)
	c.pendingLock.Unlock()
	c.n.router.call(context.Background(), func() {
		r := c.n.router
		if r.sessions[s.agent] == s {
			delete(r.sessions, s.agent)
			r.n.metrics.agentsOnline.Set(int64(len(r.sessions)))
		}
	})
	if c.n.ctx.Err() != nil {
		return // shutting down: the restarted node (or the dead-node check) disconnects it
	}
	if err := c.presence(c.n.ctx, s, stateGone, 0); err != nil {
		c.log.Warn("publish disconnect", "agent", s.agent, "err", err)
	}
}

// release asks the cluster to release phone from s's agent.
func (c *cluster) release(ctx context.Context, s *session, phone string) error {
	ev := routeEvent{ID: c.n.store.NewID(), Agent: s.agent, Phone: phone, Session: s.id, At: c.n.now().UnixMilli()}
	return c.publish(ctx, keyRelease(s.agent), ev)
}
