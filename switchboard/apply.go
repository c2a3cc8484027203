package switchboard

// This file holds applying: log → store → router, in log order.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/switchboard/eventlog"
	"github.com/switchboard/switchboard/switchboard/internal/pause"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/route"
	"github.com/switchboard/switchboard/switchboard/store"
)

// errStopping stops the apply loop without advancing the offset: the
// event is applied again after the restart.
var errStopping = errors.New("cluster: node stopping")

// route runs f on the router goroutine for the apply loop.
func (c *cluster) route(ctx context.Context, f func()) error {
	if !c.router.call(ctx, f) {
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
	// note.*, contact.*, canned.* (desk.go; a note is in msg)
	contact *contactEvent
	canned  *cannedEvent
	bad     error // undecodable: skipped, but its offset counts
	// stored is what this node's accept-time write stored of the entry
	// (the local log's direct acceptor, eventlog.Applied): storeRun does
	// not store it again. nil for entries read back or from the stream.
	stored *store.LogResult
}

// apply is the log consumer. It only decodes and queues: the applier
// stores and routes entries in runs, and it, not the bus, remembers how far
// the log is applied (the checkpoint), so acking at once is safe.
func (c *cluster) apply(ctx context.Context, d eventlog.Entry) error {
	if d.Offset <= c.queued || c.halted {
		return nil // already queued (a redelivery after a reconnect), or past a hole
	}
	// This node reads every entry, so a jump means entries were removed
	// before this node read them — unless the log still starts before the
	// jump: a RabbitMQ stream's offsets skip the broker's own chunks (one
	// at the start of every segment), so a jump alone is no hole.
	if d.Offset > c.queued+1 && c.removed(ctx, c.queued+1) {
		c.hole(ctx, c.queued+1, d.Offset-1) // nothing past it is applied (hole.go)
		return nil
	}
	e := logEntry{offset: d.Offset, key: d.Key}
	if !e.accepted(d.Applied) {
		decodeEntry(&e, d)
	}
	select {
	case c.entries <- e:
		c.queued = d.Offset
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// accepted takes the event and store result of an entry this process
// accepted and stored (a), if any: its body need not be decoded again.
func (e *logEntry) accepted(a *eventlog.Applied) bool {
	if a == nil {
		return false
	}
	ev, ok := a.Value.(messageEvent)
	if !ok || !strings.HasPrefix(e.key, "sms.") && !strings.HasPrefix(e.key, "note.") {
		return false
	}
	e.msg, e.stored = &ev, &a.Result
	return true
}

// decodeEntry decodes d's body into e.
func decodeEntry(e *logEntry, d eventlog.Entry) {
	v, _ := decodeDesk(e)
	switch {
	case v != nil:
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
}

// removed reports whether the log no longer holds offset: its first entry
// is past it, or the log cannot say (then a jump is taken for a hole).
func (c *cluster) removed(ctx context.Context, offset int64) bool {
	hctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	first, err := c.elog.Head(hctx)
	return err != nil || first.Offset > offset
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
			if !pause.For(ctx, 100*time.Millisecond) {
				return
			}
		}
	}
}

// applyRun stores a run of entries in one write, routes them in one router
// call, in log order, then does what follows outside the router.
func (c *cluster) applyRun(ctx context.Context, run []logEntry) error {
	itemOf, results, err := c.storeRun(ctx, run)
	if err != nil {
		return err
	}
	post, err := c.routeRun(ctx, run, itemOf, results)
	if err != nil {
		return err
	}
	c.afterRun(ctx, run, post)
	return nil
}

// storeRun stores the sms.* and helpdesk (desk.go) entries of a run in one write (step 1 of
// applyRun). itemOf maps each entry to its result, -1 for none.
// An entry stored at accept (logEntry.stored) takes that result instead:
// it was stored by this entry, in log generation 0.
func (c *cluster) storeRun(ctx context.Context, run []logEntry) (itemOf []int, results []store.LogResult, err error) {
	var items []store.LogItem
	var at []int // results[at[k]] is items[k]'s
	itemOf = make([]int, len(run))
	add := func(i int, r store.LogResult) {
		itemOf[i] = len(results)
		results = append(results, r)
	}
	for i := range run {
		itemOf[i] = -1
		e := &run[i]
		if e.stored != nil && c.gen == 0 {
			add(i, *e.stored)
			c.storedOnce.Add(1)
			continue
		}
		it, ok := c.deskItem(e)
		if !ok && e.bad == nil && e.msg != nil {
			it, ok = c.storeItem(e)
		}
		if ok && e.bad == nil {
			at = append(at, len(results))
			items = append(items, it)
			add(i, store.LogResult{})
		}
	}
	if len(items) > 0 {
		applied, err := c.store.ApplyLog(store.WithoutSync(ctx), items)
		if err != nil {
			return nil, nil, err
		}
		for k, r := range applied {
			results[at[k]] = r
		}
	}
	return itemOf, results, nil
}

// storeItem is what the store keeps of an sms.* entry; ok is false for
// none (a bad status, or an early one held until its send is known).
func (c *cluster) storeItem(e *logEntry) (item store.LogItem, ok bool) {
	ev := e.msg
	pos := store.LogPos(c.gen, e.offset)
	switch {
	case strings.HasPrefix(e.key, "sms.in."):
		return store.LogItem{Inbound: &store.Inbound{
			ID: ev.ID, Sid: ev.Sid, Phone: ev.Phone, To: ev.To, Text: ev.Text, FromCountry: ev.FromCountry,
			Received: time.UnixMilli(ev.Received), LogPos: pos, Media: ev.Media, OptOut: ev.OptOut,
		}}, true
	case strings.HasPrefix(e.key, "sms.out."):
		return store.LogItem{Reply: &store.Reply{
			ID: ev.ID, Phone: ev.Phone, Agent: ev.Agent, Ref: ev.Ref, Text: ev.Text,
			Sent: time.UnixMilli(ev.Received), LogPos: pos, Origin: ev.Node,
		}}, true
	case strings.HasPrefix(e.key, "sms.status."):
		if !ev.Status.Valid() || ev.Status == protocol.StatusReceived {
			e.bad = fmt.Errorf("status %q is not a delivery status", ev.Status)
			return item, false
		}
		if ev.ID == "" {
			// A callback that reached a node before the send was known
			// there: resolve it, or hold it until the send shows up.
			var found protocol.Message
			if c.early.hold(ev.ProviderID, ev.Status, ev.Detail, c.now(), func() bool {
				var err error
				found, err = c.store.MessageByProviderID(ev.ProviderID)
				return err == nil
			}) {
				return item, false
			}
			ev.ID = found.ID
		}
		return store.LogItem{Status: &store.LogStatus{ID: ev.ID, Status: ev.Status, ProviderID: ev.ProviderID, ErrorCode: store.ErrorCodeOf(ev.Detail)}}, true
	}
	return item, false
}

// routeRun routes a stored run, in log order, in one trip to the router
// (step 2 of applyRun), and returns what to do after it.
func (c *cluster) routeRun(ctx context.Context, run []logEntry, itemOf []int, results []store.LogResult) ([]func(), error) {
	// post is written on the router goroutine and read here only after
	// the call completed: a call cut short by shutdown may still be running.
	var post []func()
	err := c.route(ctx, func() {
		r := c.router
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
				if c.routeDesk(r, e, res) {
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
		return nil, err
	}
	return post, nil
}

// afterRun does what follows a routed run, outside the router (step 3 of
// applyRun), and checkpoints when one is due.
func (c *cluster) afterRun(ctx context.Context, run []logEntry, post []func()) {
	for _, e := range run {
		switch {
		case errors.Is(e.bad, store.ErrFull):
			// A limit decided in log order (canned replies): the admin
			// who asked is told (appendApplied).
			c.log.Info("log event refused", "key", e.key, "offset", e.offset, "err", e.bad)
		case e.bad != nil:
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
				c.accept.seen(id)
			}
		}
	}
	c.offset = run[len(run)-1].offset
	c.sinceCheck += len(run)
	for _, f := range post {
		f()
	}
	for _, e := range run {
		if id, node := deskID(&e); id != "" && node == c.node {
			c.accept.seen(id)
			c.applied(id, e.bad)
		}
	}
	if c.sinceCheck >= checkpointEntries || c.now().Sub(c.lastCheck) >= checkpointEvery {
		c.checkpoint(ctx)
	}
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
				return []func(){func() { c.outbound.enqueue(msg, origin) }}
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
				if c.early.has(pid) {
					c.goFunc(func() { c.applyEarly(c.ctx, id, pid) })
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
		var s *session
		if ev.Node == c.node {
			s = c.takePending(ev.Session)
		}
		r.attach(ev.Agent, ev.Session, epoch, s, ev.Node == c.node)
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
				r.startGrace(ev.Agent, epoch)
			}
		}
	}
}

func decodeJSON(d eventlog.Entry, v any) error {
	if err := json.Unmarshal(d.Body, v); err != nil {
		return fmt.Errorf("decode %s: %w", d.Key, err)
	}
	return nil
}

// expire appends the end of agent's grace period for epoch to the log
// (router.graceOver); false asks the router to try again.
func (c *cluster) expire(agent string, epoch uint64) bool {
	ev := routeEvent{ID: c.store.NewID(), Agent: agent, Epoch: epoch, By: c.node, At: c.now().UnixMilli()}
	if err := c.publish(c.ctx, keyExpire(agent), ev); err != nil && c.ctx.Err() == nil {
		c.log.Warn("publish grace expiry; retrying", "agent", agent, "err", err)
		return false
	}
	return true
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
		if ev.Agent != "" && r.engine.Owner(ev.Phone) == ev.Agent && !r.engine.LoadOf(ev.Agent).Online && !r.inGrace(ev.Agent) && c.caughtUp.Load() {
			// Held by an agent no node has seen in this log yet: it has
			// its grace period to come back, as after a restart. (Until
			// caught up, the node's "started" event starts the timers.)
			r.startGrace(ev.Agent, r.engine.Epoch(ev.Agent))
		}
		r.apply(effects, time.Time{})
	case strings.HasPrefix(key, "route.release."):
		if c.current[ev.Agent] == ev.Session {
			if effects, ok := r.engine.Release(ev.Agent, ev.Phone, at); ok {
				r.apply(effects, time.Time{})
			}
		}
	case strings.HasPrefix(key, "route.expire."):
		r.stopGrace(ev.Agent)
		if effects := r.engine.Expire(ev.Agent, ev.Epoch, at); len(effects) > 0 {
			c.log.Info("grace period over: conversations requeued", "agent", ev.Agent, "effects", len(effects))
			r.apply(effects, time.Time{})
			if ev.By == c.node {
				// No node hosts the agent any more, so none announced its
				// losses (router.announces): the node whose expiry took
				// effect does, once for the cluster.
				for _, e := range effects {
					if e.Kind == route.Released && !r.hosts(e.Agent) {
						r.announce(keyReleased(e.Agent), assignmentEvent{Agent: e.Agent, Phone: e.Phone, Reason: e.Reason, At: at.UnixMilli()})
					}
				}
			}
		}
	case strings.HasPrefix(key, "route.node."):
		return c.routeNode(r, ev)
	case strings.HasPrefix(key, "route.transfer."), strings.HasPrefix(key, "route.assign."), strings.HasPrefix(key, "route.timeout."):
		return c.routeFlow(r, strings.Split(key, ".")[1], ev, e.offset)
	}
	return nil
}
