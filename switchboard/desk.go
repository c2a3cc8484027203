package switchboard

// This file holds the helpdesk workflows of issue 18 on the one path:
// internal notes, contacts and canned replies are log events (accepted
// here, stored and routed by apply.go like every other event), so a change
// accepted on one node reaches the agents of every node.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/store"
)

// Routing keys of the helpdesk events (docs/contract.md).
func keyNote(phone string) string    { return "note." + protocol.Digits(phone) }
func keyContact(phone string) string { return "contact." + protocol.Digits(phone) }
func keyCanned(name string) string   { return "canned." + name }

// contactEvent is the body of contact.<digits>.
type contactEvent struct {
	ID    string `json:"id"`
	Phone string `json:"phone"`
	Name  string `json:"name"`
	Notes string `json:"notes,omitempty"`
	// KeepNotes (an agent's contact frame) changes only the name.
	KeepNotes bool   `json:"keepNotes,omitempty"`
	By        string `json:"by"` // "admin" or the agent
	Node      string `json:"node"`
	At        int64  `json:"at"`
}

// cannedEvent is the body of canned.<name>.
type cannedEvent struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Text   string `json:"text,omitempty"`
	Delete bool   `json:"delete,omitempty"`
	Node   string `json:"node"`
	At     int64  `json:"at"`
}

// note accepts an agent's internal note and returns its id. Notes share
// the replies' refs and their dedupe (cluster.authored, store.Reply.Note):
// a ref is stored once.
func (c *cluster) note(ctx context.Context, s *session, phone, ref, text string) (string, error) {
	return c.authored(ctx, s, phone, ref, text, protocol.Note)
}

// putContact accepts a contact change (by: "admin" or the agent). An
// admin's change is answered once applied here (appendApplied), so a GET
// that follows it reads it; an agent learns it from its contact frame.
func (c *cluster) putContact(ctx context.Context, phone string, ct protocol.Contact, keepNotes bool, by string) error {
	ev := contactEvent{
		ID: c.store.NewID(), Phone: phone, Name: ct.Name, Notes: ct.Notes, KeepNotes: keepNotes,
		By: by, Node: c.node, At: c.now().UnixMilli(),
	}
	if by == "admin" {
		return c.appendApplied(ctx, ev.ID, keyContact(phone), ev)
	}
	return c.append(ctx, ev.ID, keyContact(phone), ev)
}

// putCanned accepts a canned reply's change, answered once applied here.
func (c *cluster) putCanned(ctx context.Context, name, text string, del bool) error {
	ev := cannedEvent{ID: c.store.NewID(), Name: name, Text: text, Delete: del, Node: c.node, At: c.now().UnixMilli()}
	return c.appendApplied(ctx, ev.ID, keyCanned(name), ev)
}

// appendApplied is append for an admin's change: it returns once this node
// has applied the event too (read your writes: the GET that follows the
// PUT sees it), or, when applying lags (the broker away), after
// publishWait; the change is durable either way and is applied later.
func (c *cluster) appendApplied(ctx context.Context, id, key string, v any) error {
	done := make(chan error, 1)
	c.waitMu.Lock()
	c.waiters[id] = done
	c.waitMu.Unlock()
	defer func() {
		c.waitMu.Lock()
		delete(c.waiters, id)
		c.waitMu.Unlock()
	}()
	if err := c.append(ctx, id, key, v); err != nil {
		return err
	}
	t := time.NewTimer(publishWait)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return err // refused where applied (store.ErrFull)
		}
	case <-t.C:
		c.log.Warn("admin change durable but not applied yet", "key", key, "id", id)
	case <-ctx.Done():
	}
	return nil
}

// applied tells the appendApplied waiting for id, if any, what applying
// it did (nil, or why it was refused). Called by the applier once the
// entry's run is stored and routed.
func (c *cluster) applied(id string, err error) {
	c.waitMu.Lock()
	done, ok := c.waiters[id]
	delete(c.waiters, id)
	c.waitMu.Unlock()
	if ok {
		done <- err
	}
}

// decodeDesk prepares a helpdesk log entry for the applier (apply); false
// when the key is not one of them.
func decodeDesk(e *logEntry) (v any, ok bool) {
	switch {
	case strings.HasPrefix(e.key, "note."):
		e.msg = &messageEvent{}
		return e.msg, true
	case strings.HasPrefix(e.key, "contact."):
		e.contact = &contactEvent{}
		return e.contact, true
	case strings.HasPrefix(e.key, "canned."):
		e.canned = &cannedEvent{}
		return e.canned, true
	}
	return nil, false
}

// deskItem is the store item of a helpdesk entry; ok false when e is not
// one.
func (c *cluster) deskItem(e *logEntry) (it store.LogItem, ok bool) {
	switch {
	case e.contact != nil:
		ev := e.contact
		if protocol.Digits(ev.Phone) != strings.TrimPrefix(e.key, "contact.") {
			e.bad = fmt.Errorf("contact of %q does not match its key", ev.Phone)
			return it, false
		}
		return store.LogItem{Contact: &store.ContactPut{Phone: ev.Phone, Contact: protocol.Contact{Name: ev.Name, Notes: ev.Notes}, KeepNotes: ev.KeepNotes}}, true
	case e.canned != nil:
		ev := e.canned
		if ev.Name != strings.TrimPrefix(e.key, "canned.") {
			e.bad = fmt.Errorf("canned reply %q does not match its key", ev.Name)
			return it, false
		}
		return store.LogItem{Canned: &store.CannedPut{Name: ev.Name, Text: ev.Text, Delete: ev.Delete}}, true
	case e.msg != nil && strings.HasPrefix(e.key, "note."):
		ev := e.msg
		if protocol.Digits(ev.Phone) != strings.TrimPrefix(e.key, "note.") {
			e.bad = fmt.Errorf("note for %q does not match its key", ev.Phone)
			return it, false
		}
		return store.LogItem{Reply: &store.Reply{
			ID: ev.ID, Phone: ev.Phone, Agent: ev.Agent, Ref: ev.Ref, Text: ev.Text,
			Sent: time.UnixMilli(ev.Received), LogPos: store.LogPos(c.gen, e.offset), Origin: ev.Node, Note: true,
		}}, true
	}
	return it, false
}

// deskID is the accepted event id of a helpdesk entry ("" for others).
func deskID(e *logEntry) (id, node string) {
	switch {
	case e.contact != nil:
		return e.contact.ID, e.contact.Node
	case e.canned != nil:
		return e.canned.ID, e.canned.Node
	}
	return "", ""
}

// routeDesk tells this node's agents about a stored helpdesk entry (on
// the router goroutine); false when e is not one. A note is never handed
// to the dispatcher: it is not an SMS.
func (c *cluster) routeDesk(r *router, e *logEntry, res store.LogResult) bool {
	switch {
	case e.contact != nil:
		if res.Fresh {
			r.contactChanged(e.contact.Phone)
		}
	case e.canned != nil:
		if res.Fresh {
			r.cannedChanged()
		}
	case e.msg != nil && strings.HasPrefix(e.key, "note."):
		if res.Fresh {
			r.outbound(res.Msg)
		}
	default:
		return false
	}
	return true
}

// contactOf reads phone's contact for a frame; nil when none is set.
func (r *router) contactOf(phone string) *protocol.Contact {
	ct, ok, err := r.store.Contact(phone)
	if err != nil {
		r.log.Error("read contact", "phone", phone, "err", err)
	}
	if !ok {
		return nil
	}
	return &ct
}

// contactChanged sends the conversation's owner, if this node hosts it, an
// update with the new contact (an empty one when it was cleared).
func (r *router) contactChanged(phone string) {
	s := r.sessions[r.engine.Owner(phone)]
	if s == nil {
		return
	}
	ct := r.contactOf(phone)
	if ct == nil {
		ct = &protocol.Contact{}
	}
	s.enqueue(protocol.Frame{Type: protocol.TypeUpdate, Phone: phone, Contact: ct}, time.Time{})
}

// cannedFrame is the canned frame of the stored canned replies.
func (r *router) cannedFrame() (protocol.Frame, bool) {
	list, err := r.store.CannedReplies()
	if err != nil {
		r.log.Error("read canned replies", "err", err)
		return protocol.Frame{}, false
	}
	return protocol.Frame{Type: protocol.TypeCanned, Canned: list}, true
}

// cannedChanged sends every agent of this node the canned replies.
func (r *router) cannedChanged() {
	if f, ok := r.cannedFrame(); ok {
		for _, s := range r.sessions {
			s.enqueue(f, time.Time{})
		}
	}
}

// tellCanned sends one newly attached session the canned replies.
func (r *router) tellCanned(s *session) {
	if f, ok := r.cannedFrame(); ok {
		s.enqueue(f, time.Time{})
	}
}

// handleNote makes an internal note durable and acknowledges it, like a
// response (handleResponse) but never sent as SMS.
func (n *Node) handleNote(ctx context.Context, s *session, f protocol.Frame) {
	if !n.owns(ctx, s, f.Phone, f.Ref) {
		return
	}
	id, err := n.cluster.note(ctx, s, f.Phone, f.Ref, f.Text)
	if refused(s, f.Ref, err) {
		return
	}
	if err != nil {
		n.log.Error("accept note", "agent", s.agent, "phone", f.Phone, "err", err)
		s.enqueue(protocol.ErrorFrame(protocol.CodeInternal, "the note was not stored; retry with the same ref", f.Ref), time.Time{})
		return
	}
	s.enqueue(protocol.Frame{Type: protocol.TypeAck, Ref: f.Ref, ID: id}, time.Time{})
}

// handleContact names the customer of a conversation the agent holds; the
// agent hears of it in an update frame once applied.
func (n *Node) handleContact(ctx context.Context, s *session, f protocol.Frame) {
	if !n.owns(ctx, s, f.Phone, "") {
		return
	}
	if err := n.cluster.putContact(ctx, f.Phone, protocol.Contact{Name: f.Name}, true, s.agent); err != nil {
		n.log.Error("accept contact", "agent", s.agent, "phone", f.Phone, "err", err)
		s.enqueue(protocol.ErrorFrame(protocol.CodeInternal, "the contact was not stored; retry", ""), time.Time{})
	}
}

// owns reports whether s's agent holds phone, telling the agent when not.
func (n *Node) owns(ctx context.Context, s *session, phone, ref string) bool {
	owner := ""
	if !n.router.call(ctx, func() { owner = n.router.engine.Owner(phone) }) {
		s.enqueue(protocol.ErrorFrame(protocol.CodeShuttingDown, "the switchboard is stopping; retry shortly", ref), time.Time{})
		return false
	}
	if owner != s.agent {
		s.enqueue(protocol.ErrorFrame(protocol.CodeNotAssigned, "conversation "+phone+" is not yours", ref), time.Time{})
		return false
	}
	return true
}
