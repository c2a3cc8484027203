package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// The local log: the node's ordered event log when it runs alone (package
// eventlog, Local). Entries live under L/<offset8>; offsets are
// consecutive from 0 and never reused, also after the oldest entries are
// trimmed (g/lognext keeps the next one). Appends go through the writer,
// so concurrent appends share one synced write (group commit) and get
// their offsets in the order the writer takes them.

const (
	pLog        = "L/"
	keyLogNext  = "g/lognext"
	maxLogKey   = 1 << 10
	maxLogEntry = 1 << 20
)

func logKey(off int64) []byte { return binary.BigEndian.AppendUint64([]byte(pLog), uint64(off)) }

// LogEntry is one entry of the local log.
type LogEntry struct {
	Offset int64
	Key    string
	Body   []byte
}

func encodeLogEntry(key string, body []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(key)))
	b = append(b, key...)
	return append(b, body...)
}

func decodeLogEntry(k, v []byte) (LogEntry, error) {
	if len(k) != len(pLog)+8 || len(v) < 2 {
		return LogEntry{}, fmt.Errorf("store: corrupt log entry %q", k)
	}
	n := int(binary.BigEndian.Uint16(v))
	if len(v) < 2+n {
		return LogEntry{}, fmt.Errorf("store: corrupt log entry %q: key of %d bytes in %d", k, n, len(v))
	}
	body := make([]byte, len(v)-2-n)
	copy(body, v[2+n:])
	return LogEntry{Offset: int64(binary.BigEndian.Uint64(k[len(pLog):])), Key: string(v[2 : 2+n]), Body: body}, nil
}

// loadLogNext reads the next log offset (init).
func (s *Store) loadLogNext() error {
	v, err := s.db.Get([]byte(keyLogNext), nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		// A store without a log yet. Offsets give arrival order (a
		// waiting conversation's WaitSeq is its entry's offset + 1): they
		// start above the WaitSeqs of a store written before the log.
		s.lnext = int64(s.gseq)
	case err != nil:
		return fmt.Errorf("read log position: %w", err)
	case len(v) != 8:
		return fmt.Errorf("corrupt log position (%d bytes)", len(v))
	default:
		s.lnext = int64(binary.BigEndian.Uint64(v))
	}
	return nil
}

// AppendLog appends an entry to the local log and returns its offset once
// it is durable (synced, unless ctx is WithoutSync).
func (s *Store) AppendLog(ctx context.Context, key string, body []byte) (int64, error) {
	if key == "" || len(key) > maxLogKey {
		return 0, fmt.Errorf("store: append log: %w", invalid("key must be 1 to %d bytes", maxLogKey))
	}
	if len(body) > maxLogEntry {
		return 0, fmt.Errorf("store: append log %s: %w", key, invalid("body over %d bytes", maxLogEntry))
	}
	v := encodeLogEntry(key, body)
	var off int64
	res := s.do(ctx, func(t *txn) result {
		off = t.lnext
		t.lnext++
		t.put(logKey(off), v)
		return result{}
	})
	if res.err != nil {
		return 0, fmt.Errorf("store: append log %s: %w", key, res.err)
	}
	return off, nil
}

// AppendLogApplied appends an entry to the local log and, in the same
// synced write, stores its message (item: an inbound message or a reply)
// at the entry's position, exactly as ApplyLog would from the entry (log
// generation 0, the local log's): the message is in the store as soon as
// the entry is durable, and applying the entry later finds it stored by
// this entry (fresh, nothing written). It returns the entry's offset and
// what ApplyLog would return for item applied from that entry (Fresh,
// the stored message), so that the applier of this process need not
// store it again. A message whose sid (or agent and ref) is already
// stored appends nothing: Fresh is false, off is -1 and Msg is the stored
// message.
//
// item's ID must be one the caller has just made with NewID (the local
// log's acceptor does): it is not looked up, since a ULID made now cannot
// be in use, which saves a read of every new message (issue 22). A retry
// with the same ID is the same message, found by its sid or ref.
func (s *Store) AppendLogApplied(ctx context.Context, key string, body []byte, item LogItem) (off int64, res LogResult, err error) {
	if key == "" || len(key) > maxLogKey || len(body) > maxLogEntry {
		return -1, res, fmt.Errorf("store: append log %s: %w", key, invalid("key of 1 to %d bytes and body of at most %d", maxLogKey, maxLogEntry))
	}
	switch {
	case item.Inbound != nil:
		item.Inbound.NoWait, item.Inbound.freshID = true, true
		err = item.Inbound.validate()
	case item.Reply != nil:
		item.Reply.freshID = true
		err = item.Reply.validate()
	default:
		err = invalid("an inbound message or a reply is required")
	}
	if err == nil && (item.Inbound != nil && item.Inbound.ID == "" || item.Reply != nil && item.Reply.ID == "") {
		err = invalid("ID is required")
	}
	if err != nil {
		return -1, res, fmt.Errorf("store: append log %s: %w", key, err)
	}
	v := encodeLogEntry(key, body)
	off = -1
	r := s.do(ctx, func(t *txn) result {
		at := t.lnext
		var r result
		if in := item.Inbound; in != nil {
			in.LogPos = LogPos(0, at)
			r = t.appendInbound(in)
		} else {
			item.Reply.LogPos = LogPos(0, at)
			r = t.appendReply(item.Reply)
		}
		if r.err != nil || r.flag {
			return r // a duplicate appends nothing
		}
		off = at
		t.lnext++
		t.put(logKey(at), v)
		return r
	})
	if r.err != nil {
		return -1, res, fmt.Errorf("store: append log %s: %w", key, r.err)
	}
	return off, LogResult{Msg: r.msg, Fresh: !r.flag}, nil
}

// LogNext returns the offset the next appended entry will get.
func (s *Store) LogNext() int64 { return s.logNext.Load() }

// ReadLog calls fn for the entries at from and after, in order, at most
// max of them (max <= 0: all).
func (s *Store) ReadLog(from int64, max int, fn func(LogEntry) error) error {
	if from < 0 {
		from = 0
	}
	// Entries are read first and handed to fn after, so that fn may use
	// the store (the database is held open while it is read).
	var entries []LogEntry
	err := s.db.scanRange(&util.Range{Start: logKey(from), Limit: []byte(pLog + "\xff\xff\xff\xff\xff\xff\xff\xff\xff")}, func(it iterator.Iterator) error {
		for n := 0; (max <= 0 || n < max) && it.Next(); n++ {
			e, err := decodeLogEntry(it.Key(), it.Value())
			if err != nil {
				return err
			}
			entries = append(entries, e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: read log: %w", err)
	}
	for _, e := range entries {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// LogHead returns the first entry the local log holds; ok is false while
// it holds none.
func (s *Store) LogHead() (e LogEntry, ok bool, err error) {
	err = s.ReadLog(0, 1, func(first LogEntry) error {
		e, ok = first, true
		return nil
	})
	return e, ok, err
}

// TrimLog deletes the entries before offset before (they are applied and
// checkpointed). The next offset is kept: offsets are never reused.
func (s *Store) TrimLog(ctx context.Context, before int64) error {
	var keys [][]byte
	err := s.db.scanRange(&util.Range{Start: logKey(0), Limit: logKey(max(before, 0))}, func(it iterator.Iterator) error {
		for it.Next() {
			keys = append(keys, append([]byte(nil), it.Key()...))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: trim log: %w", err)
	}
	if len(keys) == 0 {
		return nil
	}
	res := s.do(WithoutSync(ctx), func(t *txn) result {
		for _, k := range keys {
			t.del(k)
		}
		return result{}
	})
	if res.err != nil {
		return fmt.Errorf("store: trim log: %w", res.err)
	}
	return nil
}
