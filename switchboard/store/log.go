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
