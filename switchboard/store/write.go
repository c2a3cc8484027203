package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Limits on identifiers, so a hostile caller cannot make huge keys.
const (
	maxSid        = 256 // Twilio's MessageSid is 34 characters
	maxID         = 128
	maxProviderID = 256
	maxCountry    = 8
)

// Inbound is an SMS from a customer.
type Inbound struct {
	// ID, when not empty, is used instead of a generated id (replay of a
	// message first stored by another node). An ID already used by another
	// message fails with ErrConflict.
	ID string
	// Sid is the provider's MessageSid. Required; a repeated Sid stores
	// nothing and returns the stored message.
	Sid string
	// Phone is the customer's number, E.164. Required.
	Phone string
	// To is our number the customer wrote to.
	To string
	// Text is the message body, at most protocol.MaxText bytes; may be empty
	// (a picture-only MMS).
	Text        string
	FromCountry string
	// Media are the message's media items (MMS, WhatsApp), kept in order.
	Media []protocol.Media
	// OptOut is the provider's opt-out kind for the message
	// (protocol.OptOutStop, ...; Twilio's OptOutType), empty when it gave
	// none; the text's keyword (protocol.OptOutKeyword) counts otherwise.
	// A stop marks the customer opted out (OptedOut), a start undoes it.
	OptOut string
	// Received is when the message arrived. Zero value: Options.Now().
	Received time.Time
	// LogPos (cluster mode) is the log position (offset+1) of the event
	// being applied; see ApplyInbound.
	LogPos int64
	// NoWait (cluster mode) leaves the conversation's routing state alone:
	// the cluster router writes it with its checkpoints.
	NoWait bool

	freshID bool // ID was just made by NewID (AppendLogApplied): not looked up
}

// Reply is a message from an agent to a customer.
type Reply struct {
	// ID, when not empty, is used instead of a generated id.
	ID string
	// Phone is the customer's number, E.164. Required.
	Phone string
	// Agent is the author (protocol.ValidAgentName). Required.
	Agent string
	// Ref is the agent client's id for the reply; a repeated (Agent, Ref)
	// stores nothing and returns the stored reply. Required, at most
	// protocol.MaxRef bytes.
	Ref string
	// Text is the body: not empty, at most protocol.MaxText bytes.
	Text string
	// Sent is when the agent sent it. Zero value: Options.Now().
	Sent time.Time
	// LogPos (cluster mode) is the log position (offset+1) of the event
	// being applied; see ApplyReply.
	LogPos int64
	// Origin (cluster mode) is the node that accepted the reply.
	Origin string
	// Note makes it an internal note (protocol.Note): stored and deduped
	// by ref like a reply, but never in the outbox and without a delivery
	// status.
	Note bool

	freshID bool // ID was just made by NewID (AppendLogApplied): not looked up
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// clean replaces invalid UTF-8 with U+FFFD, as the JSON encoding of the
// record (and of the wire protocol) would: the message answered is then
// exactly the message read back later.
func clean(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func validID(id string) error {
	if len(id) > maxID || !utf8.ValidString(id) {
		return invalid("ID must be at most %d bytes of UTF-8", maxID)
	}
	return nil
}

func (in *Inbound) validate() error {
	in.Text, in.To, in.FromCountry = clean(in.Text), clean(in.To), clean(in.FromCountry)
	in.Media = cleanMedia(in.Media)
	if _, err := protocol.NormalizeAddress(in.Phone); err != nil {
		return invalid("phone %q: %v", in.Phone, err)
	}
	if err := validMedia(in.Media); err != nil {
		return err
	}
	switch in.OptOut {
	case "", protocol.OptOutStop, protocol.OptOutStart, protocol.OptOutHelp:
	default:
		return invalid("opt-out kind %.16q is not stop, start or help", in.OptOut)
	}
	switch {
	case in.Sid == "" || len(in.Sid) > maxSid:
		return invalid("Sid must be 1 to %d bytes", maxSid)
	case len(in.Text) > protocol.MaxText:
		return invalid("text is %d bytes, more than %d", len(in.Text), protocol.MaxText)
	case len(in.To) > 32:
		return invalid("To is too long")
	case len(in.FromCountry) > maxCountry:
		return invalid("FromCountry is too long")
	}
	return validID(in.ID)
}

// AppendInbound stores an inbound SMS (Direction in, Status received) at the
// end of its conversation, durably, before it returns. A repeated Sid writes
// nothing and returns the stored message with duplicate=true.
//
// In the same atomic write, a conversation that has no agent and is not
// waiting becomes Waiting with a new WaitSeq (see ConvState).
func (s *Store) AppendInbound(ctx context.Context, in Inbound) (msg protocol.Message, duplicate bool, err error) {
	if err := in.validate(); err != nil {
		return protocol.Message{}, false, fmt.Errorf("store: append inbound %s: %w", in.Sid, err)
	}
	res := s.do(ctx, func(t *txn) result { return t.appendInbound(&in) })
	if res.err != nil {
		return protocol.Message{}, false, fmt.Errorf("store: append inbound %s: %w", in.Sid, res.err)
	}
	return res.msg, res.flag, nil
}

func (t *txn) appendInbound(in *Inbound) result {
	// Every read and check first; puts last (see request).
	if id, ok, err := t.get(sidKey(in.Sid)); err != nil {
		return result{err: err}
	} else if ok {
		// The record is handed on in the result: a replayed log entry
		// (txn.replayed) needs it too, and need not read it again.
		rec, key, err := recordAt(t.get, string(id))
		if err != nil {
			return result{err: err}
		}
		m, err := decodeRecord(t.get, string(key[len(pMsg):len(key)-9]), &rec)
		return result{msg: m, flag: true, err: err, rec: &rec, recKey: key}
	}
	id := in.ID
	if id != "" && !in.freshID {
		if _, ok, err := t.get(idKey(id)); err != nil {
			return result{err: err}
		} else if ok {
			return result{err: fmt.Errorf("%w: %s", ErrConflict, id)}
		}
	}
	// The conversation's state matters only to a message that makes it
	// wait here (not NoWait); from the log, routing does that.
	var conv convRec
	if !in.NoWait {
		var err error
		if conv, err = loadConv(t.get, in.Phone); err != nil {
			return result{err: err}
		}
	}
	seq, err := t.nextSeq(in.Phone)
	if err != nil {
		return result{err: err}
	}
	if id == "" {
		id = t.s.opts.NewID()
	}
	received := in.Received
	if received.IsZero() {
		received = t.s.opts.Now()
	}
	rec := record{
		ID:          id,
		Dir:         protocol.In,
		Text:        in.Text,
		Received:    received.UnixMilli(),
		FromCountry: in.FromCountry,
		To:          in.To,
		Sid:         in.Sid,
		Pos:         in.LogPos,
		Media:       in.Media,
		OptOut:      optOutKind(in.OptOut, in.Text),
	}
	t.applyConsent(in.Phone, rec.OptOut)
	t.putRecord(msgKey(in.Phone, seq), &rec)
	t.put(idKey(id), loc{phone: in.Phone, seq: seq}.encode())
	t.put(sidKey(in.Sid), []byte(id))
	if !in.NoWait && conv.Agent == "" && !conv.Waiting {
		conv.Waiting = true
		conv.WaitSeq = t.nextGlobal()
		t.put(convKey(in.Phone), mustJSON(&conv))
	}
	return result{msg: rec.message(in.Phone)}
}

func (r *Reply) validate() error {
	r.Text = clean(r.Text)
	if _, err := protocol.NormalizeAddress(r.Phone); err != nil {
		return invalid("phone %q: %v", r.Phone, err)
	}
	if err := protocol.ValidAgentName(r.Agent); err != nil {
		return invalid("%v", err)
	}
	switch {
	case r.Ref == "" || len(r.Ref) > protocol.MaxRef:
		return invalid("ref must be 1 to %d bytes", protocol.MaxRef)
	case r.Text == "":
		return invalid("text is empty")
	case len(r.Text) > protocol.MaxText:
		return invalid("text is %d bytes, more than %d", len(r.Text), protocol.MaxText)
	}
	return validID(r.ID)
}

// AppendReply stores an agent's reply (Direction out, Status queued) at the
// end of its conversation and, in the same atomic write, puts it in the
// outbox (see Pending). A repeated (Agent, Ref) with the same phone and text
// writes nothing and returns the stored reply, with its current status, and
// duplicate=true; with another phone or text it fails with ErrRefConflict.
// Refs are never forgotten: the ref index lives as long as the reply.
func (s *Store) AppendReply(ctx context.Context, r Reply) (msg protocol.Message, duplicate bool, err error) {
	if err := r.validate(); err != nil {
		return protocol.Message{}, false, fmt.Errorf("store: append reply %s/%s: %w", r.Agent, r.Ref, err)
	}
	res := s.do(ctx, func(t *txn) result { return t.appendReply(&r) })
	if res.err != nil {
		return protocol.Message{}, false, fmt.Errorf("store: append reply %s/%s: %w", r.Agent, r.Ref, res.err)
	}
	return res.msg, res.flag, nil
}

func (t *txn) appendReply(r *Reply) result {
	if id, ok, err := t.get(refKey(r.Agent, r.Ref)); err != nil {
		return result{err: err}
	} else if ok {
		m, _, err := loadMessage(t.get, string(id))
		if err == nil && (m.Phone != r.Phone || m.Text != r.Text) {
			return result{err: fmt.Errorf("%w: ref %q is reply %s to %s", ErrRefConflict, r.Ref, m.ID, m.Phone)}
		}
		return result{msg: m, flag: true, err: err}
	}
	id := r.ID
	if id != "" && !r.freshID {
		if _, ok, err := t.get(idKey(id)); err != nil {
			return result{err: err}
		} else if ok {
			return result{err: fmt.Errorf("%w: %s", ErrConflict, id)}
		}
	}
	seq, err := t.nextSeq(r.Phone)
	if err != nil {
		return result{err: err}
	}
	if id == "" {
		id = t.s.opts.NewID()
	}
	sent := r.Sent
	if sent.IsZero() {
		sent = t.s.opts.Now()
	}
	dir, oseq := protocol.Note, uint64(0)
	if !r.Note {
		dir, oseq = protocol.Out, t.nextGlobal()
	}
	rec := record{
		ID:       id,
		Dir:      dir,
		Text:     r.Text,
		Received: sent.UnixMilli(),
		Agent:    r.Agent,
		Ref:      r.Ref,
		Pos:      r.LogPos,
		Origin:   r.Origin,
	}
	t.putRecord(msgKey(r.Phone, seq), &rec)
	t.put(idKey(id), loc{phone: r.Phone, seq: seq, oseq: oseq}.encode())
	t.put(refKey(r.Agent, r.Ref), []byte(id))
	if !r.Note {
		t.put(outboxKey(oseq, id), nil)
		t.put(statusKey(id), mustJSON(&statusRec{Status: protocol.StatusQueued, Phone: r.Phone, OSeq: oseq, Agent: r.Agent}))
	}
	return result{msg: rec.message(r.Phone)}
}

// SetStatus records the delivery status of reply id. A status never moves
// backwards (protocol.Status.Advances): when st does not advance, nothing
// about the status changes and changed=false. When st is sent, delivered or
// failed the reply leaves the outbox.
//
// providerID (the provider's id of the sent SMS), when not empty and none is
// recorded yet, is recorded and indexed for MessageByProviderID, even when
// the status does not advance (a late "sent" that carries the provider id
// after a "delivered" still makes the id findable). The first provider id
// recorded stays.
//
// ErrNotFound when no message has this id; ErrInvalid for an inbound message
// or a status that is not queued, sent, delivered or failed.
func (s *Store) SetStatus(ctx context.Context, id string, st protocol.Status, providerID string) (msg protocol.Message, changed bool, err error) {
	return s.SetStatusCode(ctx, id, st, providerID, "")
}

// SetStatusCode is SetStatus with the provider's error code of a failure:
// failed with OptOutCode (Twilio 21610) also marks the customer opted out,
// in the same write.
func (s *Store) SetStatusCode(ctx context.Context, id string, st protocol.Status, providerID, errorCode string) (msg protocol.Message, changed bool, err error) {
	switch {
	case st != protocol.StatusQueued && st != protocol.StatusSent && st != protocol.StatusDelivered && st != protocol.StatusFailed:
		err = invalid("status %q is not a delivery status", st)
	case id == "" || len(id) > maxID:
		err = invalid("id must be 1 to %d bytes", maxID)
	case len(providerID) > maxProviderID:
		err = invalid("provider id must be at most %d bytes", maxProviderID)
	}
	if err == nil {
		res := s.do(ctx, func(t *txn) result { return t.setStatus(id, st, providerID, errorCode, false) })
		msg, changed, err = res.msg, res.flag, res.err
	}
	if err != nil {
		return protocol.Message{}, false, fmt.Errorf("store: set status %s %s: %w", id, st, err)
	}
	return msg, changed, nil
}

// setStatus is SetStatusCode's write. With head, the message it returns
// has only its ID, Phone, Direction, Agent and Status (what routing a
// status from the log needs), read from the reply's status key alone
// when that key repeats them (replies stored by this version).
func (t *txn) setStatus(id string, st protocol.Status, providerID, errorCode string, head bool) result {
	cur, err := loadStatus(t.get, id)
	if err != nil {
		return result{err: err}
	}
	var m protocol.Message
	var oseq uint64
	if head && cur.Phone != "" {
		m = protocol.Message{ID: id, Phone: cur.Phone, Direction: protocol.Out, Agent: cur.Agent}
		oseq = cur.OSeq
	} else {
		var l loc
		if m, l, err = loadRecord(t.get, id, head); err != nil {
			return result{err: err}
		}
		oseq = l.oseq
	}
	if m.Direction != protocol.Out {
		return result{err: invalid("message %s is inbound and has no delivery status", id)}
	}
	next := cur
	changed := cur.Status.Advances(st)
	if changed {
		next.Status = st
	}
	if providerID != "" && cur.ProviderID == "" {
		next.ProviderID = providerID
		t.put(pidKey(providerID), []byte(id))
	} else if providerID != "" && providerID != cur.ProviderID {
		t.s.log.Warn("provider id differs from the recorded one; keeping the first",
			"id", id, "recorded", cur.ProviderID, "new", providerID)
	}
	if next != cur {
		t.put(statusKey(id), mustJSON(&next))
	}
	// A reply leaves the outbox once the provider has taken it: its status
	// advanced, or the provider gave it an id (Twilio answers "queued").
	if cur.Status == protocol.StatusQueued && cur.ProviderID == "" && (changed || next.ProviderID != "") {
		t.del(outboxKey(oseq, id))
	}
	if st == protocol.StatusFailed && errorCode == OptOutCode {
		t.applyConsent(m.Phone, protocol.OptOutStop)
	}
	m.Status = next.Status
	return result{msg: m, flag: changed}
}

func (t *txn) updateConv(phone string, change func(*convRec)) result {
	c, err := loadConv(t.get, phone)
	if err != nil {
		return result{err: err}
	}
	next := c
	change(&next)
	if next != c {
		t.put(convKey(phone), mustJSON(&next))
	}
	return result{}
}
