package switchboard

// This file holds accepting: webhooks, replies, statuses and agent requests become log events.

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/store"
)

type acceptedID struct {
	id string
	at time.Time
}

// acceptedBefore returns the id given to key (a sid or an agent/ref) when
// this node accepted it recently, or "" — and otherwise remembers id.
func (c *cluster) acceptedBefore(key, id string) string {
	c.acceptMu.Lock()
	defer c.acceptMu.Unlock()
	now := c.n.now()
	if a, ok := c.accepted[key]; ok && now.Sub(a.at) < time.Minute {
		return a.id
	}
	if len(c.accepted) > 100000 {
		for k, a := range c.accepted {
			if now.Sub(a.at) >= time.Minute {
				delete(c.accepted, k)
			}
		}
	}
	c.accepted[key] = acceptedID{id: id, at: now}
	return ""
}

// inbound accepts a webhook's message in cluster mode: journaled (durable)
// and published; stored and routed when it comes back from the log.
func (c *cluster) inbound(ctx context.Context, in store.Inbound, born time.Time) (duplicate bool, err error) {
	if _, err := c.n.store.MessageBySid(in.Sid); err == nil {
		return true, nil
	}
	id := c.n.store.NewID()
	if prev := c.acceptedBefore("sid/"+in.Sid, id); prev != "" {
		id = prev // a retry before the first copy reached the log: same event
	}
	msg := protocol.Message{
		ID: id, Phone: in.Phone, Direction: protocol.In, Text: in.Text,
		Received: born.UnixMilli(), Status: protocol.StatusReceived, FromCountry: in.FromCountry,
	}
	ev := messageEvent{Message: msg, Node: c.node, Born: born.UnixNano(), Sid: in.Sid, To: in.To}
	return false, c.append(ctx, id, keyIn(in.Phone), ev)
}

// reply accepts an agent's reply in cluster mode and returns its id.
func (c *cluster) reply(ctx context.Context, s *session, phone, ref, text string) (string, error) {
	if m, err := c.n.store.MessageByRef(s.agent, ref); err == nil {
		return m.ID, nil
	}
	id := c.n.store.NewID()
	if prev := c.acceptedBefore("ref/"+s.agent+"/"+ref, id); prev != "" {
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

// presence publishes a presence event for session s.
func (c *cluster) presence(ctx context.Context, s *session, state string, capacity int) error {
	ev := presenceEvent{
		Agent: s.agent, Node: c.node, State: state, Capacity: capacity,
		At: c.n.now().UnixMilli(), ID: c.n.store.NewID(), Session: s.id,
	}
	return c.publish(ctx, keyPresence(s.agent), ev)
}

func (c *cluster) publish(ctx context.Context, key string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	return c.n.publish(ctx, key, v)
}
