package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/syndtr/goleveldb/leveldb"
)

// txn is the batch the writer is building. Its reads see the database plus
// everything earlier requests of the same batch put, so dedupe and seq
// allocation are right within a batch as well as across batches.
type txn struct {
	s     *Store
	batch leveldb.Batch
	over  map[string][]byte // key → value put in this batch; nil value = deleted
	seqs  map[string]uint64 // working copies of s.seqs for phones touched
	gseq  uint64            // working copy of s.gseq
	lnext int64             // working copy of s.lnext

	borrowed bool // batch holds a caller's buffer (importWriter): not kept for reuse
}

// newTxn returns the writer's txn for the next group: the previous
// group's, emptied, when there is one. Reusing its batch buffer and map
// saves growing them again for every group: the batch alone was a sixth
// of the bytes the node allocated at its ceiling (issue 22).
func newTxn(s *Store) *txn {
	t := s.spare
	s.spare = nil
	if t == nil {
		t = &txn{s: s, over: make(map[string][]byte), seqs: make(map[string]uint64)}
	}
	t.gseq, t.lnext = s.gseq, s.lnext
	return t
}

// Reuse limits: a group larger than this (a snapshot import) is not kept.
const (
	maxSpareBatch = 1 << 20 // bytes of batch records
	maxSpareKeys  = 4096    // keys in over
)

// keepTxn empties t, once its group is written and answered, for newTxn.
// goleveldb copies a batch into its journal and memtable within Write,
// so its buffer is free once Write returns.
func (s *Store) keepTxn(t *txn) {
	if t.borrowed || len(t.batch.Dump()) > maxSpareBatch || len(t.over) > maxSpareKeys {
		return
	}
	t.batch.Reset()
	clear(t.over)
	clear(t.seqs)
	s.spare = t
}

// get reads key as it will be after this batch so far.
func (t *txn) get(key []byte) ([]byte, bool, error) {
	if v, ok := t.over[string(key)]; ok {
		return v, v != nil, nil
	}
	v, err := t.s.db.Get(key, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func (t *txn) put(key, value []byte) {
	if value == nil {
		value = []byte{}
	}
	t.over[string(key)] = value
	t.batch.Put(key, value)
	t.indexPut(key, value) // message records only (search.go)
}

// putRecord puts message record rec at message key key and indexes it
// from rec itself (put would decode the JSON it was just given).
func (t *txn) putRecord(key []byte, rec *record) {
	value := mustJSON(rec)
	t.over[string(key)] = value
	t.batch.Put(key, value)
	t.indexRecord(key, rec)
}

func (t *txn) del(key []byte) {
	t.over[string(key)] = nil
	t.batch.Delete(key)
}

// nextSeq allocates the next message seq of a conversation.
func (t *txn) nextSeq(phone string) (uint64, error) {
	last, ok := t.seqs[phone]
	if !ok {
		last, ok = t.s.seqs[phone]
	}
	if !ok {
		var err error
		if last, err = t.s.lastSeq(phone); err != nil {
			return 0, fmt.Errorf("last seq of %s: %w", phone, err)
		}
	}
	t.seqs[phone] = last + 1
	return last + 1, nil
}

// nextGlobal allocates the next store-global sequence number.
func (t *txn) nextGlobal() uint64 {
	t.gseq++
	return t.gseq
}

// publishSeqs makes the sequence numbers the batch allocated the writer's
// state, after the write whether it succeeded or not (see commit).
func (t *txn) publishSeqs() {
	if len(t.s.seqs)+len(t.seqs) > maxSeqCache {
		clear(t.s.seqs)
	}
	for phone, seq := range t.seqs {
		t.s.seqs[phone] = seq
	}
	t.s.gseq = t.gseq
}

// getter reads one key: from a snapshot for readers, from a txn for the
// writer. ok=false when the key does not exist.
type getter func(key []byte) (value []byte, ok bool, err error)

func snapGetter(snap *leveldb.Snapshot) getter {
	return func(key []byte) ([]byte, bool, error) {
		v, err := snap.Get(key, nil)
		if errors.Is(err, leveldb.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		return v, true, nil
	}
}

// locate finds where message id lives.
func locate(get getter, id string) (loc, error) {
	v, ok, err := get(idKey(id))
	if err != nil {
		return loc{}, err
	}
	if !ok {
		return loc{}, ErrNotFound
	}
	return decodeLoc(v)
}

// loadMessage reads message id with its current delivery status.
func loadMessage(get getter, id string) (protocol.Message, loc, error) {
	l, v, err := locateRecord(get, id)
	if err != nil {
		return protocol.Message{}, loc{}, err
	}
	m, err := decodeMessage(get, l.phone, v)
	return m, l, err
}

// locateRecord reads where message id lives and its stored record.
func locateRecord(get getter, id string) (loc, []byte, error) {
	l, err := locate(get, id)
	if err != nil {
		return loc{}, nil, err
	}
	v, ok, err := get(msgKey(l.phone, l.seq))
	if err != nil {
		return loc{}, nil, err
	}
	if !ok {
		return loc{}, nil, fmt.Errorf("id index of %s points at a missing message %s #%d", id, l.phone, l.seq)
	}
	return l, v, nil
}

// loadRecord reads message id without its delivery status (Status is the
// direction's first). With head only the record's id, direction and agent
// are decoded (recordHead), not its text.
func loadRecord(get getter, id string, head bool) (protocol.Message, loc, error) {
	l, v, err := locateRecord(get, id)
	if err != nil {
		return protocol.Message{}, loc{}, err
	}
	var m protocol.Message
	if head {
		var h recordHead
		err = json.Unmarshal(v, &h)
		m = protocol.Message{ID: h.ID, Phone: l.phone, Direction: h.Dir, Agent: h.Agent}
	} else {
		var r record
		err = json.Unmarshal(v, &r)
		m = r.message(l.phone)
	}
	if err != nil {
		return protocol.Message{}, loc{}, fmt.Errorf("corrupt message record in %s: %w", l.phone, err)
	}
	return m, l, nil
}

// decodeMessage turns a stored record into a message, with the delivery
// status of a reply merged in from its s/ key.
func decodeMessage(get getter, phone string, v []byte) (protocol.Message, error) {
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return protocol.Message{}, fmt.Errorf("corrupt message record in %s: %w", phone, err)
	}
	return decodeRecord(get, phone, &r)
}

// decodeRecord is decodeMessage of a record already decoded.
func decodeRecord(get getter, phone string, r *record) (protocol.Message, error) {
	m := r.message(phone)
	if m.Direction == protocol.Out {
		st, err := loadStatus(get, m.ID)
		if err != nil {
			return protocol.Message{}, err
		}
		m.Status = st.Status
	}
	return m, nil
}

// loadStatus reads the delivery status of reply id (queued when none stored).
func loadStatus(get getter, id string) (statusRec, error) {
	v, ok, err := get(statusKey(id))
	if err != nil {
		return statusRec{}, err
	}
	if !ok {
		return statusRec{Status: protocol.StatusQueued}, nil
	}
	var st statusRec
	if err := json.Unmarshal(v, &st); err != nil {
		return statusRec{}, fmt.Errorf("corrupt status of %s: %w", id, err)
	}
	return st, nil
}

// loadConv reads the routing state of a conversation (zero when unknown).
func loadConv(get getter, phone string) (convRec, error) {
	v, ok, err := get(convKey(phone))
	if err != nil || !ok {
		return convRec{}, err
	}
	var c convRec
	if err := json.Unmarshal(v, &c); err != nil {
		return convRec{}, fmt.Errorf("corrupt conversation state of %s: %w", phone, err)
	}
	return c, nil
}
