package store

import (
	"errors"
	"fmt"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// ConvState is the routing state of one conversation, kept so a restarted
// node can rebuild its router.
type ConvState struct {
	Phone     string
	Agent     string // current agent, "" when none
	LastAgent string // previous agent, for sticky routing
	Waiting   bool   // has unhandled inbound messages and no agent
	WaitSeq   uint64 // store-global arrival order of the message that made it wait (smaller = earlier)
}

// readErr maps LevelDB's closed error to ErrClosed.
func readErr(err error) error {
	if errors.Is(err, leveldb.ErrClosed) {
		return ErrClosed
	}
	return err
}

// snapshot runs fn against a consistent snapshot and releases it.
func (s *Store) snapshot(fn func(snap *leveldb.Snapshot) error) error {
	return readErr(s.db.view(func(db *leveldb.DB) error {
		snap, err := db.GetSnapshot()
		if err != nil {
			return err
		}
		defer snap.Release()
		return fn(snap)
	}))
}

// Message returns message id with its current status. ErrNotFound when
// unknown.
func (s *Store) Message(id string) (protocol.Message, error) {
	var m protocol.Message
	err := s.snapshot(func(snap *leveldb.Snapshot) (err error) {
		m, _, err = loadMessage(snapGetter(snap), id)
		return err
	})
	if err != nil {
		return protocol.Message{}, fmt.Errorf("store: message %s: %w", id, err)
	}
	return m, nil
}

// MessageByProviderID returns the reply the provider knows as providerID
// (recorded by SetStatus). ErrNotFound when unknown.
func (s *Store) MessageByProviderID(providerID string) (protocol.Message, error) {
	m, err := s.messageByIndex(pidKey(providerID))
	if err != nil {
		return m, fmt.Errorf("store: message by provider id %s: %w", providerID, err)
	}
	return m, nil
}

// messageByIndex reads the message an index key (sid/, ref/, pid/) points to.
func (s *Store) messageByIndex(key []byte) (protocol.Message, error) {
	var m protocol.Message
	err := s.snapshot(func(snap *leveldb.Snapshot) error {
		get := snapGetter(snap)
		id, ok, err := get(key)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		m, _, err = loadMessage(get, string(id))
		return err
	})
	return m, err
}

// Pending returns the outbox: replies stored but not yet handed to the
// provider (status still queued), oldest first.
func (s *Store) Pending() ([]protocol.Message, error) {
	replies, err := s.PendingReplies()
	if err != nil {
		return nil, err
	}
	list := make([]protocol.Message, len(replies))
	for i, r := range replies {
		list[i] = r.Message
	}
	return list, nil
}

// History returns up to limit messages of a conversation, oldest first,
// ending just before message before (before=="" means up to the newest).
// more=true when older messages exist before the first one returned. limit
// <= 0 or above protocol.MaxHistory means protocol.MaxHistory. An unknown
// before, or one from another conversation, is ErrNotFound.
func (s *Store) History(phone, before string, limit int) (list []protocol.Message, more bool, err error) {
	if limit <= 0 || limit > protocol.MaxHistory {
		limit = protocol.MaxHistory
	}
	err = s.snapshot(func(snap *leveldb.Snapshot) error {
		get := snapGetter(snap)
		r := util.BytesPrefix(convPrefix(phone))
		if before != "" {
			l, err := locate(get, before)
			if err != nil {
				return fmt.Errorf("before %s: %w", before, err)
			}
			if l.phone != phone {
				return fmt.Errorf("before %s is in another conversation: %w", before, ErrNotFound)
			}
			r.Limit = msgKey(phone, l.seq) // exclusive
		}
		it := snap.NewIterator(r, nil)
		defer it.Release()
		for ok := it.Last(); ok; ok = it.Prev() {
			if len(list) == limit {
				more = true
				break
			}
			m, err := decodeMessage(get, phone, it.Value())
			if err != nil {
				return err
			}
			list = append(list, m)
		}
		return it.Error()
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: history %s: %w", phone, err)
	}
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	return list, more, nil
}

// Conversation returns the whole conversation, oldest first (for admins;
// the agent protocol pages with History).
func (s *Store) Conversation(phone string) ([]protocol.Message, error) {
	var list []protocol.Message
	err := s.snapshot(func(snap *leveldb.Snapshot) error {
		get := snapGetter(snap)
		it := snap.NewIterator(util.BytesPrefix(convPrefix(phone)), nil)
		defer it.Release()
		for it.Next() {
			m, err := decodeMessage(get, phone, it.Value())
			if err != nil {
				return err
			}
			list = append(list, m)
		}
		return it.Error()
	})
	if err != nil {
		return nil, fmt.Errorf("store: conversation %s: %w", phone, err)
	}
	return list, nil
}

// ConvState returns the routing state of a conversation; the zero state
// (with Phone set) when the conversation is unknown.
func (s *Store) ConvState(phone string) (ConvState, error) {
	v, err := s.db.Get(convKey(phone), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return ConvState{Phone: phone}, nil
	}
	if err != nil {
		return ConvState{}, fmt.Errorf("store: conversation state %s: %w", phone, readErr(err))
	}
	c, err := loadConv(func([]byte) ([]byte, bool, error) { return v, true, nil }, phone)
	if err != nil {
		return ConvState{}, fmt.Errorf("store: conversation state %s: %w", phone, err)
	}
	return c.state(phone), nil
}

func (c convRec) state(phone string) ConvState {
	return ConvState{Phone: phone, Agent: c.Agent, LastAgent: c.LastAgent, Waiting: c.Waiting, WaitSeq: c.WaitSeq}
}

// Conversations calls fn with the state of every conversation, in no
// particular order, from one consistent snapshot. It stops at the first
// error fn returns and returns it.
func (s *Store) Conversations(fn func(ConvState) error) error {
	err := s.snapshot(func(snap *leveldb.Snapshot) error {
		it := snap.NewIterator(util.BytesPrefix([]byte(pConv)), nil)
		defer it.Release()
		for it.Next() {
			phone := string(it.Key()[len(pConv):])
			v := it.Value()
			c, err := loadConv(func([]byte) ([]byte, bool, error) { return v, true, nil }, phone)
			if err != nil {
				return err
			}
			if err := fn(c.state(phone)); err != nil {
				return err
			}
		}
		return it.Error()
	})
	if err != nil {
		return fmt.Errorf("store: conversations: %w", err)
	}
	return nil
}
