package switchboard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/store"
)

// requestTimeout bounds the work one agent frame may cause.
const requestTimeout = 10 * time.Second

// handleFrame acts on one valid frame from an agent. The session's reader
// waits for it (session.handleAside), so one agent's frames are handled
// one at a time, in order.
func (n *Node) handleFrame(s *session, f protocol.Frame) {
	ctx, cancel := context.WithTimeout(n.ctx, requestTimeout)
	defer cancel()
	if s.supervisor && f.Type != protocol.TypeAssign && f.Type != protocol.TypeHistory {
		s.enqueue(protocol.ErrorFrame(protocol.CodeForbidden, "a supervisor session only assigns and reads conversations", f.Ref), time.Time{})
		return
	}
	switch f.Type {
	case protocol.TypeTransfer, protocol.TypeAssign:
		n.handleFlow(ctx, s, f)
	case protocol.TypeAvailable, protocol.TypeAway, protocol.TypeRelease:
		n.agentRequest(ctx, s, f)
	case protocol.TypeResponse:
		n.handleResponse(ctx, s, f)
	case protocol.TypeHistory:
		n.handleHistory(ctx, s, f)
	case protocol.TypeNote:
		n.handleNote(ctx, s, f)
	case protocol.TypeContact:
		n.handleContact(ctx, s, f)
	case protocol.TypeSearch:
		n.handleSearch(ctx, s, f) // search.go
	}
}

// handleResponse makes a reply durable (accept.go) and acknowledges it; it
// is stored and sent when the log is applied. A repeated ref is acknowledged with the stored id and sends
// nothing new.
func (n *Node) handleResponse(ctx context.Context, s *session, f protocol.Frame) {
	phone := f.Phone
	var refusal *protocol.Error
	if !n.router.call(ctx, func() {
		owned := n.router.engine.Conversations(s.agent)
		switch {
		case phone == "" && len(owned) == 1:
			phone = owned[0]
		case phone == "" && len(owned) == 0:
			refusal = &protocol.Error{Code: protocol.CodeNotAssigned, Text: "you have no conversation to reply to", Ref: f.Ref}
		case phone == "":
			refusal = &protocol.Error{Code: protocol.CodeAmbiguous, Text: fmt.Sprintf("you have %d conversations: say which phone", len(owned)), Ref: f.Ref}
		case n.router.engine.Owner(phone) != s.agent:
			refusal = &protocol.Error{Code: protocol.CodeNotAssigned, Text: "conversation " + phone + " is not yours", Ref: f.Ref}
		}
	}) {
		s.enqueue(protocol.ErrorFrame(protocol.CodeShuttingDown, "the switchboard is stopping; retry shortly", f.Ref), time.Time{})
		return
	}
	if refusal == nil {
		refusal = n.consent(phone, f.Ref)
	}
	if refusal != nil {
		s.enqueue(refusal.Frame(), time.Time{})
		return
	}
	id, err := n.cluster.reply(ctx, s, phone, f.Ref, f.Message)
	if refused(s, f.Ref, err) {
		return
	}
	if err != nil {
		n.log.Error("accept reply", "agent", s.agent, "phone", phone, "err", err)
		s.enqueue(protocol.ErrorFrame(protocol.CodeInternal, "the reply was not stored; retry with the same ref", f.Ref), time.Time{})
		return
	}
	s.enqueue(protocol.Frame{Type: protocol.TypeAck, Ref: f.Ref, ID: id}, time.Time{})
}

// consent refuses a reply to a customer who opted out (opted_out), before
// it is stored or reaches the provider.
func (n *Node) consent(phone, ref string) *protocol.Error {
	out, err := n.store.OptedOut(phone)
	if err != nil {
		n.log.Error("read opt-out", "phone", phone, "err", err)
		return &protocol.Error{Code: protocol.CodeInternal, Text: "the reply was not stored; retry with the same ref", Ref: ref}
	}
	if out {
		return &protocol.Error{Code: protocol.CodeOptedOut, Text: "the customer opted out (STOP): nothing is sent to " + phone + " until they text START", Ref: ref}
	}
	return nil
}

// refused tells the agent why its reply was refused for good and reports
// true, when err says so: a ref already used for another reply.
func refused(s *session, ref string, err error) bool {
	if errors.Is(err, store.ErrRefConflict) {
		s.enqueue(protocol.ErrorFrame(protocol.CodeRefConflict, "ref "+ref+" was already used for a reply or note with another phone or text; use a new ref", ref), time.Time{})
		return true
	}
	return false
}

func (n *Node) handleHistory(ctx context.Context, s *session, f protocol.Frame) {
	allowed := false
	n.router.call(ctx, func() {
		c := n.router.engine.Conversation(f.Phone)
		allowed = c.Agent == s.agent || c.LastAgent == s.agent || s.supervisor
	})
	if !allowed {
		s.enqueue(protocol.ErrorFrame(protocol.CodeNotAssigned, "conversation "+f.Phone+" is not yours", ""), time.Time{})
		return
	}
	list, more, err := n.store.History(f.Phone, f.Before, f.Limit)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.enqueue(protocol.ErrorFrame(protocol.CodeNotFound, "no message "+f.Before+" in "+f.Phone, ""), time.Time{})
	case err != nil:
		n.log.Error("history", "phone", f.Phone, "err", err)
		s.enqueue(protocol.ErrorFrame(protocol.CodeInternal, "history unavailable; retry", ""), time.Time{})
	default:
		s.enqueue(protocol.Frame{Type: protocol.TypeHistory, Phone: f.Phone, List: list, More: more}, time.Time{})
	}
}

// agentRequest turns available, away and release frames into log events;
// they take effect when the log is applied.
func (n *Node) agentRequest(ctx context.Context, s *session, f protocol.Frame) {
	var err error
	switch f.Type {
	case protocol.TypeAvailable:
		capacity := f.Capacity
		if capacity <= 0 {
			capacity = s.capacity
		}
		s.available.Store(true)
		s.lastCapacity.Store(int64(capacity))
		err = n.cluster.presence(ctx, s, stateAvailable, capacity)
	case protocol.TypeAway:
		s.available.Store(false)
		err = n.cluster.presence(ctx, s, stateAway, 0)
	case protocol.TypeRelease:
		owner := ""
		n.router.call(ctx, func() { owner = n.router.engine.Owner(f.Phone) })
		if owner != s.agent {
			s.enqueue(protocol.ErrorFrame(protocol.CodeNotAssigned, "conversation "+f.Phone+" is not yours", ""), time.Time{})
			return
		}
		err = n.cluster.release(ctx, s, f.Phone)
	}
	if err != nil {
		n.log.Warn("publish agent request", "agent", s.agent, "type", f.Type, "err", err)
		s.enqueue(protocol.ErrorFrame(protocol.CodeUnavailable, "the switchboard cannot reach its message broker; retry shortly", f.Ref), time.Time{})
	}
}
