package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// This file holds the helpdesk data of issue 18: contacts and canned
// replies, both written only by applying the log (ApplyLog) so every node
// holds the same. (Internal notes are messages: Reply.Note.)
//
//	ct/<phone>   contactRec (JSON)   the customer's name and notes
//	cn/<name>    cannedRec (JSON)    one canned reply

const (
	pContact = "ct/"
	pCanned  = "cn/"
)

func contactKey(phone string) []byte { return []byte(pContact + phone) }
func cannedKey(name string) []byte   { return []byte(pCanned + name) }

type contactRec struct {
	Name  string `json:"n,omitempty"`
	Notes string `json:"t,omitempty"`
}

type cannedRec struct {
	Text string `json:"t"`
}

// ContactPut sets (or, when Contact is empty, clears) a customer's contact.
type ContactPut struct {
	Phone   string
	Contact protocol.Contact
	// KeepNotes changes only the name (an agent's contact frame): the
	// notes stay as the log left them.
	KeepNotes bool
}

// CannedPut sets a canned reply's text, or deletes it.
type CannedPut struct {
	Name   string
	Text   string
	Delete bool
}

func (c *ContactPut) validate() error {
	if _, err := protocol.NormalizeAddress(c.Phone); err != nil {
		return invalid("phone %q: %v", c.Phone, err)
	}
	clean, err := protocol.CleanContact(c.Contact)
	if err != nil {
		return invalid("%v", err)
	}
	c.Contact = clean
	return nil
}

func (c *CannedPut) validate() error {
	if err := protocol.ValidCannedName(c.Name); err != nil {
		return invalid("%v", err)
	}
	if !c.Delete {
		if err := protocol.ValidCannedText(c.Text); err != nil {
			return invalid("%v", err)
		}
	}
	return nil
}

// putContact writes a contact; flag (not fresh) when nothing changed.
func (t *txn) putContact(c *ContactPut) result {
	old, _, err := t.get(contactKey(c.Phone))
	if err != nil {
		return result{err: err}
	}
	if c.KeepNotes && old != nil {
		var r contactRec
		if err := json.Unmarshal(old, &r); err != nil {
			return result{err: fmt.Errorf("corrupt contact %s: %w", c.Phone, err)}
		}
		c.Contact.Notes = r.Notes
	}
	if c.Contact == (protocol.Contact{}) {
		if old == nil {
			return result{flag: true}
		}
		t.del(contactKey(c.Phone))
		return result{}
	}
	v := mustJSON(&contactRec{Name: c.Contact.Name, Notes: c.Contact.Notes})
	if string(old) == string(v) {
		return result{flag: true}
	}
	t.put(contactKey(c.Phone), v)
	return result{}
}

// putCanned writes or deletes a canned reply; flag when nothing changed.
func (t *txn) putCanned(c *CannedPut) result {
	old, ok, err := t.get(cannedKey(c.Name))
	if err != nil {
		return result{err: err}
	}
	if c.Delete {
		if !ok {
			return result{flag: true}
		}
		t.del(cannedKey(c.Name))
		return result{}
	}
	v := mustJSON(&cannedRec{Text: c.Text})
	if ok && string(old) == string(v) {
		return result{flag: true}
	}
	if !ok {
		// The limit is decided here, in log order, so that two nodes
		// adding replies at once cannot pass it together.
		n, err := t.cannedCount()
		if err != nil {
			return result{err: err}
		}
		if n >= protocol.MaxCanned {
			return result{err: fmt.Errorf("%w: there are already %d canned replies, the most kept; delete one first", ErrFull, protocol.MaxCanned)}
		}
	}
	t.put(cannedKey(c.Name), v)
	return result{}
}

// cannedCount counts the canned replies as they will be after this batch
// so far.
func (t *txn) cannedCount() (int, error) {
	names := map[string]bool{}
	err := t.s.db.scan([]byte(pCanned), func(it iterator.Iterator) error {
		for it.Next() {
			names[string(it.Key())] = true
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: count canned replies: %w", readErr(err))
	}
	for k, v := range t.over {
		if strings.HasPrefix(k, pCanned) {
			if v == nil {
				delete(names, k)
			} else {
				names[k] = true
			}
		}
	}
	return len(names), nil
}

// Contact returns the contact of phone; ok is false when none is set.
func (s *Store) Contact(phone string) (c protocol.Contact, ok bool, err error) {
	v, err := s.db.Get(contactKey(phone), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("store: contact %s: %w", phone, readErr(err))
	}
	var r contactRec
	if err := json.Unmarshal(v, &r); err != nil {
		return c, false, fmt.Errorf("store: corrupt contact %s: %w", phone, err)
	}
	return protocol.Contact{Name: r.Name, Notes: r.Notes}, true, nil
}

// CannedReplies returns every canned reply, by name.
func (s *Store) CannedReplies() ([]protocol.CannedReply, error) {
	list := []protocol.CannedReply{}
	err := s.snapshot(func(snap *leveldb.Snapshot) error {
		it := snap.NewIterator(util.BytesPrefix([]byte(pCanned)), nil)
		defer it.Release()
		for it.Next() {
			var r cannedRec
			if err := json.Unmarshal(it.Value(), &r); err != nil {
				return fmt.Errorf("corrupt canned reply %q: %w", it.Key(), err)
			}
			list = append(list, protocol.CannedReply{Name: string(it.Key()[len(pCanned):]), Text: r.Text})
		}
		return it.Error()
	})
	if err != nil {
		return nil, fmt.Errorf("store: canned replies: %w", err)
	}
	return list, nil
}

// validateDesk checks a contact or canned item of ApplyLog; handled is
// false for other items.
func (it LogItem) validateDesk() (handled bool, err error) {
	switch {
	case it.Contact != nil:
		return true, it.Contact.validate()
	case it.Canned != nil:
		return true, it.Canned.validate()
	}
	return false, nil
}

// applyDesk stores a contact or canned item of ApplyLog; handled is false
// for other items.
func (t *txn) applyDesk(it LogItem) (r result, handled bool) {
	switch {
	case it.Contact != nil:
		return t.putContact(it.Contact), true
	case it.Canned != nil:
		return t.putCanned(it.Canned), true
	}
	return result{}, false
}
