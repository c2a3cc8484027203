package switchboard

// This file holds accepting: webhooks, replies, statuses and agent requests become log events.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/store"
)

type acceptedID struct {
	id   string
	at   time.Time
	what string // a digest of the content (replies: phone and text)
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

// acceptWindow is how long acceptedBefore remembers a key.
const acceptWindow = time.Minute

// acceptedBefore returns the id given to key (a sid or an agent/ref) when
// this node accepted it recently, or "" — and otherwise remembers id with
// what (the content). Accepted before with another what: refConflict.
func (c *cluster) acceptedBefore(key, id, what string) string {
	c.acceptMu.Lock()
	defer c.acceptMu.Unlock()
	now := c.now()
	if a, ok := c.accepted.get(key, now); ok {
		if a.what != what {
			return refConflict
		}
		return a.id
	}
	c.accepted.put(key, acceptedID{id: id, at: now, what: what}, now)
	return ""
}

// recentKeys remembers keys for at least keep, in two generations: the
// older is dropped whole once the newer is keep old, so remembering costs
// the same at any rate. (A sweep of one map, once it held 100,000 keys,
// deleted nothing while they were all younger than keep, and then ran
// again on every webhook: above about 1,700 webhooks a second, each one
// scanned the whole map.) It holds at most two windows of keys.
type recentKeys struct {
	keep     time.Duration
	cur, old map[string]acceptedID
	since    time.Time // when cur began
}

func newRecentKeys(keep time.Duration) recentKeys {
	return recentKeys{keep: keep, cur: map[string]acceptedID{}}
}

func (r *recentKeys) get(key string, now time.Time) (acceptedID, bool) {
	a, ok := r.cur[key]
	if !ok {
		a, ok = r.old[key]
	}
	return a, ok && now.Sub(a.at) < r.keep
}

func (r *recentKeys) put(key string, a acceptedID, now time.Time) {
	if now.Sub(r.since) >= r.keep {
		r.old, r.cur, r.since = r.cur, make(map[string]acceptedID, len(r.cur)), now
	}
	r.cur[key] = a
}

// inbound accepts a webhook's message: durable (acceptor), then stored
// and routed when it is applied from the log.
func (c *cluster) inbound(ctx context.Context, in store.Inbound, born time.Time) (duplicate bool, err error) {
	id := c.store.NewID()
	if prev := c.acceptedBefore("sid/"+in.Sid, id, ""); prev != "" {
		id = prev // a retry before the first copy reached the log: same event
	}
	msg := protocol.Message{
		ID: id, Phone: in.Phone, Direction: protocol.In, Text: in.Text,
		Received: born.UnixMilli(), Status: protocol.StatusReceived, FromCountry: in.FromCountry,
		Media: in.Media, OptOut: in.OptOut, // OptOut: the provider's kind; the store adds the keyword's
	}
	ev := messageEvent{Message: msg, Node: c.node, Born: born.UnixNano(), Sid: in.Sid, To: in.To}
	item := store.LogItem{Inbound: &store.Inbound{ID: id, Sid: in.Sid, Phone: in.Phone, To: in.To, Text: in.Text,
		FromCountry: in.FromCountry, Received: time.UnixMilli(msg.Received), Media: in.Media, OptOut: in.OptOut}}
	return c.appendItem(ctx, id, keyIn(in.Phone), ev, &item)
}

// reply accepts an agent's reply and returns its id.
func (c *cluster) reply(ctx context.Context, s *session, phone, ref, text string) (string, error) {
	return c.authored(ctx, s, phone, ref, text, protocol.Out)
}

// authored accepts a message an agent wrote, a reply (protocol.Out) or an
// internal note (protocol.Note, desk.go): both share the agent's refs, so
// a ref is stored once whichever it names.
func (c *cluster) authored(ctx context.Context, s *session, phone, ref, text string, dir protocol.Direction) (string, error) {
	if m, err := c.store.MessageByRef(s.agent, ref); err == nil {
		if m.Phone != phone || m.Text != text || m.Direction != dir {
			return "", fmt.Errorf("cluster: reply %s/%s: %w", s.agent, ref, store.ErrRefConflict)
		}
		return m.ID, nil
	}
	id := c.store.NewID()
	if prev := c.acceptedBefore("ref/"+s.agent+"/"+ref, id, digestOf(phone, text, string(dir))); prev != "" {
		if prev == refConflict {
			return "", fmt.Errorf("cluster: reply %s/%s: %w", s.agent, ref, store.ErrRefConflict)
		}
		return prev, nil
	}
	msg := protocol.Message{
		ID: id, Phone: phone, Direction: dir, Text: text, Agent: s.agent,
		Received: c.now().UnixMilli(), Status: protocol.StatusQueued,
	}
	key := keyOut(phone)
	if dir == protocol.Note {
		key, msg.Status = keyNote(phone), protocol.StatusReceived
	}
	item := store.LogItem{Reply: &store.Reply{ID: id, Phone: phone, Agent: s.agent, Ref: ref, Text: text,
		Sent: time.UnixMilli(msg.Received), Origin: c.node, Note: dir == protocol.Note}}
	_, err := c.appendItem(ctx, id, key, messageEvent{Message: msg, Node: c.node, Ref: ref}, &item)
	return id, err
}

// status publishes a delivery status change through the journal. id may be
// empty when only the provider's id is known (an early callback).
func (c *cluster) status(ctx context.Context, msg protocol.Message, st protocol.Status, providerID, detail string) error {
	eid := c.store.NewID()
	key := "sms.status.unknown"
	if msg.Phone != "" {
		key = keyStatus(msg.Phone)
	}
	m := protocol.Message{ID: msg.ID, Phone: msg.Phone, Direction: protocol.Out, Status: st, Agent: msg.Agent, Text: msg.Text, Received: msg.Received}
	return c.append(ctx, eid, key, messageEvent{Message: m, Node: c.node, ProviderID: providerID, Detail: detail, EventID: eid})
}

// connect registers a new local session and announces it.
func (c *cluster) connect(s *session) error {
	s.id = c.store.NewID()
	c.pendingLock.Lock()
	c.pending[s.id] = s
	c.pendingLock.Unlock()
	s.enqueue(protocol.Frame{Type: protocol.TypeAlert, Text: "How can I help you?"}, time.Time{})
	return c.presence(c.ctx, s, stateConnected, 0)
}

// takePending returns (and forgets) the local session whose connection
// is being applied, if it is still open.
func (c *cluster) takePending(id string) *session {
	c.pendingLock.Lock()
	defer c.pendingLock.Unlock()
	s := c.pending[id]
	delete(c.pending, id)
	return s
}

// disconnect forgets a local session and announces it is gone.
func (c *cluster) disconnect(s *session) {
	c.pendingLock.Lock()
	delete(c.pending, s.id)
	c.pendingLock.Unlock()
	c.router.call(context.Background(), func() { c.router.forget(s) })
	if c.ctx.Err() != nil {
		return // shutting down: the restarted node (or the dead-node check) disconnects it
	}
	if err := c.presence(c.ctx, s, stateGone, 0); err != nil {
		c.log.Warn("publish disconnect", "agent", s.agent, "err", err)
	}
}

// release asks the cluster to release phone from s's agent.
func (c *cluster) release(ctx context.Context, s *session, phone string) error {
	ev := routeEvent{ID: c.store.NewID(), Agent: s.agent, Phone: phone, Session: s.id, At: c.now().UnixMilli()}
	return c.publish(ctx, keyRelease(s.agent), ev)
}

// presence publishes a presence event for session s.
func (c *cluster) presence(ctx context.Context, s *session, state string, capacity int) error {
	ev := presenceEvent{
		Agent: s.agent, Node: c.node, State: state, Capacity: capacity,
		At: c.now().UnixMilli(), ID: c.store.NewID(), Session: s.id,
	}
	return c.publish(ctx, keyPresence(s.agent), ev)
}

// publish appends an event to the log and waits until the log has it.
// Events published this way (presence, releases, expiries, node states)
// are not journaled: when the broker is away their publish fails and the
// caller says so (to the agent) or retries.
func (c *cluster) publish(ctx context.Context, key string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("publish %s: %w", key, err)
	}
	ctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	start := c.now()
	if err := c.elog.Append(ctx, key, body); err != nil && !errors.Is(err, bus.ErrUnroutable) {
		return fmt.Errorf("publish %s: %w", key, err)
	}
	c.metrics.busLatency.Observe(c.now().Sub(start))
	return nil
}

// append makes an event this node accepted durable (acceptor) before it is
// answered for.
func (c *cluster) append(ctx context.Context, id, key string, v any) error {
	_, err := c.appendItem(ctx, id, key, v, nil)
	return err
}

// appendItem is append for an event that stores item when applied; dup
// says item's message is stored already (a retry), and nothing was
// appended.
func (c *cluster) appendItem(ctx context.Context, id, key string, v any, item *store.LogItem) (dup bool, err error) {
	body, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("accept %s: %w", key, err)
	}
	return c.accept.accept(ctx, id, key, v, body, item)
}
