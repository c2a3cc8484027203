package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// This file holds what cluster mode needs (see the node's cluster.go):
// applying events from the shared log idempotently, a journal of events this
// node accepted but has not yet seen in the log, and checkpoints that save
// routing state together with the log position it reflects.

// recordOf reads the stored record of message id.
func recordOf(get getter, id string) (record, error) {
	r, _, err := recordAt(get, id)
	return r, err
}

// recordAt is recordOf that also returns the record's key.
func recordAt(get getter, id string) (record, []byte, error) {
	l, err := locate(get, id)
	if err != nil {
		return record{}, nil, err
	}
	key := msgKey(l.phone, l.seq)
	v, ok, err := get(key)
	if err != nil {
		return record{}, nil, err
	}
	if !ok {
		return record{}, nil, fmt.Errorf("message %s: record missing", id)
	}
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return record{}, nil, fmt.Errorf("corrupt message record %s: %w", id, err)
	}
	return r, key, nil
}

// posGenShift places a log generation above the offset in a stored log
// position (LogPos).
const posGenShift = 40

// LogPos is the position stored for the cluster log entry at offset, read
// from log generation gen. A node's generation counts the replaced logs it
// has adopted (a broker that lost its log starts a new one, at offset 0):
// an inbound message stored from an older generation's log is fresh again
// at its first entry in the new one (see ApplyLog), so that every node,
// whatever it had stored before, routes the new log's entries alike.
func LogPos(gen, offset int64) int64 { return gen<<posGenShift | (offset + 1) }

// replayed turns the duplicate flag of an append into "not fresh": a
// duplicate stored by this same log entry (same id and position) is a replay
// and stays fresh. With regen (inbound messages), a duplicate first stored
// from an older log generation is fresh too, and from now on belongs to
// this entry.
func (t *txn) replayed(r result, id string, pos int64, regen bool) result {
	if r.err != nil || !r.flag {
		return r
	}
	var rec record
	var key []byte
	if r.rec != nil && r.rec.ID == r.msg.ID {
		rec, key = *r.rec, r.recKey
	} else {
		var err error
		if rec, key, err = recordAt(t.get, r.msg.ID); err != nil {
			return result{err: err}
		}
	}
	if regen && rec.Pos>>posGenShift < pos>>posGenShift {
		rec.Pos = pos
		t.putRecord(key, &rec)
	}
	// A position names one log entry: the entry that stored (or, regen,
	// took over) the record is being replayed.
	r.flag = rec.Pos != pos || (!regen && rec.ID != id)
	return r
}

// ApplyInbound stores an inbound message read from the cluster log at
// position in.LogPos (offset+1). fresh reports whether this log entry should
// be routed: true when the message is new, and also when this same entry
// stored it before (a replay after a restart from an older checkpoint);
// false for a second log entry of a message already stored (a republished
// event, or a Twilio retry that reached another node).
func (s *Store) ApplyInbound(ctx context.Context, in Inbound) (msg protocol.Message, fresh bool, err error) {
	if in.LogPos <= 0 || in.ID == "" {
		return msg, false, fmt.Errorf("store: apply inbound: %w", invalid("LogPos and ID are required"))
	}
	in.NoWait = true
	if err := in.validate(); err != nil {
		return msg, false, fmt.Errorf("store: apply inbound %s: %w", in.Sid, err)
	}
	res := s.do(ctx, func(t *txn) result { return t.replayed(t.appendInbound(&in), in.ID, in.LogPos, true) })
	if res.err != nil {
		return msg, false, fmt.Errorf("store: apply inbound %s: %w", in.Sid, res.err)
	}
	return res.msg, !res.flag, nil
}

// ApplyReply is ApplyInbound for a reply (dedupe by Agent and Ref).
func (s *Store) ApplyReply(ctx context.Context, r Reply) (msg protocol.Message, fresh bool, err error) {
	if r.LogPos <= 0 || r.ID == "" {
		return msg, false, fmt.Errorf("store: apply reply: %w", invalid("LogPos and ID are required"))
	}
	if err := r.validate(); err != nil {
		return msg, false, fmt.Errorf("store: apply reply %s/%s: %w", r.Agent, r.Ref, err)
	}
	res := s.do(ctx, func(t *txn) result { return t.replayed(t.appendReply(&r), r.ID, r.LogPos, false) })
	if res.err != nil {
		return msg, false, fmt.Errorf("store: apply reply %s/%s: %w", r.Agent, r.Ref, res.err)
	}
	return res.msg, !res.flag, nil
}

// PendingReply is an outbox entry with the node that accepted it.
type PendingReply struct {
	protocol.Message
	Origin string
}

// PendingReplies is Pending with each reply's origin node.
func (s *Store) PendingReplies() ([]PendingReply, error) {
	var list []PendingReply
	err := s.snapshot(func(snap *leveldb.Snapshot) error {
		get := snapGetter(snap)
		it := snap.NewIterator(util.BytesPrefix([]byte(pOutbox)), nil)
		defer it.Release()
		for it.Next() {
			id, err := idOfOutboxKey(it.Key())
			if err != nil {
				return err
			}
			m, _, err := loadMessage(get, id)
			if err != nil {
				return fmt.Errorf("outbox entry %s: %w", id, err)
			}
			rec, err := recordOf(get, id)
			if err != nil {
				return err
			}
			list = append(list, PendingReply{Message: m, Origin: rec.Origin})
		}
		return it.Error()
	})
	if err != nil {
		return nil, fmt.Errorf("store: pending replies: %w", err)
	}
	return list, nil
}

// MessageBySid returns the inbound message stored for a provider MessageSid.
func (s *Store) MessageBySid(sid string) (protocol.Message, error) {
	m, err := s.messageByIndex(sidKey(sid))
	if err != nil {
		return m, fmt.Errorf("store: message by sid %s: %w", sid, err)
	}
	return m, nil
}

// HasSid reports whether an inbound message with this provider MessageSid
// is stored: MessageBySid without reading the message.
func (s *Store) HasSid(sid string) (bool, error) {
	var ok bool
	err := readErr(s.db.view(func(db *leveldb.DB) (err error) {
		ok, err = db.Has(sidKey(sid), nil)
		return err
	}))
	if err != nil {
		return false, fmt.Errorf("store: has sid %s: %w", sid, err)
	}
	return ok, nil
}

// JournalEntry is an event this node accepted (and answered for) that it
// has not yet seen in the cluster log. It is kept durably until it has, so
// it can be published again after a broker outage or a restart.
type JournalEntry struct {
	ID   string    `json:"id"`
	Key  string    `json:"key"`
	Body []byte    `json:"body"`
	At   time.Time `json:"at"`
}

// PutJournal records e durably (synced, group-committed).
func (s *Store) PutJournal(ctx context.Context, e JournalEntry) error {
	if e.ID == "" || len(e.ID) > maxID {
		return fmt.Errorf("store: put journal: %w", invalid("bad id"))
	}
	v := mustJSON(&e)
	res := s.do(ctx, func(t *txn) result {
		t.put([]byte(pJournal+e.ID), v)
		return result{}
	})
	if res.err != nil {
		return fmt.Errorf("store: put journal %s: %w", e.ID, res.err)
	}
	return nil
}

// DeleteJournal forgets journal entries once they are in the log.
func (s *Store) DeleteJournal(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	res := s.do(ctx, func(t *txn) result {
		for _, id := range ids {
			t.del([]byte(pJournal + id))
		}
		return result{}
	})
	if res.err != nil {
		return fmt.Errorf("store: delete journal: %w", res.err)
	}
	return nil
}

// Journal calls fn for every journal entry, oldest id first.
func (s *Store) Journal(fn func(JournalEntry) error) error {
	return s.snapshot(func(snap *leveldb.Snapshot) error {
		it := snap.NewIterator(util.BytesPrefix([]byte(pJournal)), nil)
		defer it.Release()
		for it.Next() {
			var e JournalEntry
			if err := json.Unmarshal(it.Value(), &e); err != nil {
				return fmt.Errorf("store: corrupt journal entry %q: %w", it.Key(), err)
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return it.Error()
	})
}

// SaveCheckpoint writes conversation routing states and the caller's
// checkpoint blob in one atomic write, so that after a crash the routing
// state and the log position it reflects always match.
func (s *Store) SaveCheckpoint(ctx context.Context, convs []ConvState, blob []byte) error {
	for _, c := range convs {
		if _, err := protocol.NormalizeAddress(c.Phone); err != nil {
			return fmt.Errorf("store: save checkpoint: %w", invalid("phone %q", c.Phone))
		}
	}
	res := s.do(ctx, func(t *txn) result {
		for _, c := range convs {
			t.put(convKey(c.Phone), mustJSON(&convRec{Agent: c.Agent, LastAgent: c.LastAgent, Waiting: c.Waiting, WaitSeq: c.WaitSeq}))
		}
		t.put([]byte(keyCheck), blob)
		return result{}
	})
	if res.err != nil {
		return fmt.Errorf("store: save checkpoint: %w", res.err)
	}
	return nil
}

// ResetRouting forgets the routing state of every conversation and saves
// the checkpoint blob, in one write: a node that adopts a replaced cluster
// log starts its routing over from that log. Messages stay. Call it while
// nothing else saves routing state (in cluster mode only checkpoints do).
func (s *Store) ResetRouting(ctx context.Context, blob []byte) error {
	var phones []string
	if err := s.Conversations(func(c ConvState) error {
		phones = append(phones, c.Phone)
		return nil
	}); err != nil {
		return fmt.Errorf("store: reset routing: %w", err)
	}
	res := s.do(ctx, func(t *txn) result {
		for _, p := range phones {
			t.del(convKey(p))
		}
		t.put([]byte(keyCheck), blob)
		return result{}
	})
	if res.err != nil {
		return fmt.Errorf("store: reset routing: %w", res.err)
	}
	return nil
}

// LoadCheckpoint returns the last checkpoint blob, or nil when none.
func (s *Store) LoadCheckpoint() ([]byte, error) {
	v, err := s.db.Get([]byte(keyCheck), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: load checkpoint: %w", readErr(err))
	}
	return v, nil
}

// MessageByRef returns the reply stored for an agent's client ref.
func (s *Store) MessageByRef(agent, ref string) (protocol.Message, error) {
	m, err := s.messageByIndex(refKey(agent, ref))
	if err != nil {
		return m, fmt.Errorf("store: message by ref %s/%s: %w", agent, ref, err)
	}
	return m, nil
}

// NewID returns a new message id from the store's id generator.
func (s *Store) NewID() string { return s.opts.NewID() }

// LogItem is one cluster log entry to store: exactly one field is set.
type LogItem struct {
	Inbound *Inbound    // LogPos and ID required
	Reply   *Reply      // LogPos and ID required
	Status  *LogStatus  // a delivery status change of a stored reply
	Contact *ContactPut // desk.go; Fresh: it changed
	Canned  *CannedPut  // desk.go; Fresh: it changed
}

// LogStatus is a status change read from the log.
type LogStatus struct {
	ID         string
	Status     protocol.Status
	ProviderID string
	ErrorCode  string // the provider's error code of a failure (see SetStatusCode)
}

// LogResult is what storing one LogItem did.
type LogResult struct {
	// Msg is the message stored. For a status it has only its ID, Phone,
	// Direction, Agent and (new) Status: routing a status needs no more,
	// and its text is not decoded.
	Msg protocol.Message
	// Fresh (inbound, reply): route this entry (see ApplyInbound).
	// For a status: the status advanced.
	Fresh bool
	// Err is this item's own failure (ErrInvalid, ErrNotFound, ErrConflict);
	// the other items are stored.
	Err error
}

// ApplyLog stores a run of cluster log entries in one write: one trip to
// the writer and one LevelDB batch for the lot, instead of one each. Items
// are applied in order, each atomically; an item that fails leaves nothing
// and does not stop the others. The error is for the write as a whole
// (nothing stored; retry the run — applying is idempotent).
func (s *Store) ApplyLog(ctx context.Context, items []LogItem) ([]LogResult, error) {
	out := make([]LogResult, len(items))
	for i, it := range items {
		if ok, err := it.validateDesk(); ok {
			out[i].Err = err
			continue
		}
		switch {
		case it.Inbound != nil:
			in := it.Inbound
			in.NoWait = true
			if in.LogPos <= 0 || in.ID == "" {
				out[i].Err = invalid("LogPos and ID are required")
			} else if err := in.validate(); err != nil {
				out[i].Err = err
			}
		case it.Reply != nil:
			if it.Reply.LogPos <= 0 || it.Reply.ID == "" {
				out[i].Err = invalid("LogPos and ID are required")
			} else if err := it.Reply.validate(); err != nil {
				out[i].Err = err
			}
		case it.Status != nil:
			st := it.Status
			switch {
			case st.Status != protocol.StatusQueued && st.Status != protocol.StatusSent && st.Status != protocol.StatusDelivered && st.Status != protocol.StatusFailed:
				out[i].Err = invalid("status %q is not a delivery status", st.Status)
			case st.ID == "" || len(st.ID) > maxID || len(st.ProviderID) > maxProviderID:
				out[i].Err = invalid("bad id or provider id")
			}
		default:
			out[i].Err = invalid("empty log item")
		}
	}
	res := s.do(ctx, func(t *txn) result {
		for i, it := range items {
			if out[i].Err != nil {
				continue
			}
			r, desk := t.applyDesk(it)
			switch {
			case desk:
			case it.Inbound != nil:
				r = t.replayed(t.appendInbound(it.Inbound), it.Inbound.ID, it.Inbound.LogPos, true)
			case it.Reply != nil:
				r = t.replayed(t.appendReply(it.Reply), it.Reply.ID, it.Reply.LogPos, false)
			case it.Status != nil:
				r = t.setStatus(it.Status.ID, it.Status.Status, it.Status.ProviderID, it.Status.ErrorCode, true)
				r.flag = !r.flag // setStatus's flag is "changed"; below, flag means "not fresh"
			}
			if r.err != nil {
				out[i].Err = r.err
				continue
			}
			out[i].Msg, out[i].Fresh = r.msg, !r.flag
		}
		return result{}
	})
	if res.err != nil {
		return nil, fmt.Errorf("store: apply log: %w", res.err)
	}
	return out, nil
}
