package store

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Write failures and recovery (issue 19: a full disk).
//
// goleveldb keeps the first error of its journal writer for good: after a
// write fails (ENOSPC, EIO) every later write fails with the same error,
// even once space is free, until the database is opened again. So when a
// group commit fails the store marks itself failing (Ready reports it, so
// the node answers /readyz with 503) and the writer recovers by itself:
// before each later batch, and every recoverEvery while failing, it probes
// with one small synced write; if that fails it closes the database and
// opens it again (at most every recoverEvery), which replays the journal
// (everything acknowledged was synced) and starts a new one. Requests
// fail at once while the store is failing, so callers answer 503 (Twilio
// retries) and nothing is acknowledged that is not stored. Reads keep
// working: while the disk refuses a reopen the database is open read-only;
// only between a close and an open do they fail with ErrUnavailable.

// recoverEvery is how often a failing store tries to reopen.
const recoverEvery = 250 * time.Millisecond

// ErrUnavailable: the store's writes are failing (a full disk, an I/O
// error) and it is recovering. Nothing was written; retry later.
var ErrUnavailable = errors.New("store: unavailable: writes are failing")

// failure is why the store is not writing, and since when.
type failure struct {
	err   error
	since time.Time
}

// liveDB is the open LevelDB, which the writer may replace while
// recovering. Every access holds mu for reading; the writer swaps under
// the write lock.
type liveDB struct {
	mu     sync.RWMutex
	db     *leveldb.DB // nil while reopening, or once closed
	closed bool        // Close was called: the store is closed for good
}

func (l *liveDB) view(fn func(db *leveldb.DB) error) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	switch {
	case l.closed:
		return leveldb.ErrClosed
	case l.db == nil:
		return ErrUnavailable
	}
	return fn(l.db)
}

func (l *liveDB) Get(key []byte, ro *opt.ReadOptions) (v []byte, err error) {
	err = l.view(func(db *leveldb.DB) error {
		v, err = db.Get(key, ro)
		return err
	})
	return v, err
}

func (l *liveDB) Put(key, v []byte, wo *opt.WriteOptions) error {
	return l.view(func(db *leveldb.DB) error { return db.Put(key, v, wo) })
}

func (l *liveDB) Write(b *leveldb.Batch, wo *opt.WriteOptions) error {
	return l.view(func(db *leveldb.DB) error { return db.Write(b, wo) })
}

// scan runs fn with an iterator over prefix and releases it.
func (l *liveDB) scan(prefix []byte, fn func(it iterator.Iterator) error) error {
	return l.view(func(db *leveldb.DB) error {
		it := db.NewIterator(util.BytesPrefix(prefix), nil)
		defer it.Release()
		if err := fn(it); err != nil {
			return err
		}
		return it.Error()
	})
}

// scanRange runs fn with an iterator over r and releases it. fn runs with
// the database held open: it must not call back into the store.
func (l *liveDB) scanRange(r *util.Range, fn func(it iterator.Iterator) error) error {
	return l.view(func(db *leveldb.DB) error {
		it := db.NewIterator(r, nil)
		defer it.Release()
		if err := fn(it); err != nil {
			return err
		}
		return it.Error()
	})
}

// Close closes the database for good.
func (l *liveDB) Close() error {
	err := l.release()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return err
}

// release closes the database, if one is open, to open it again.
func (l *liveDB) release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db == nil {
		return nil
	}
	err := l.db.Close()
	l.db = nil
	return err
}

// failing returns why writes fail, or nil.
func (s *Store) failing() *failure { return s.fail.Load() }

// markFailing records a failed write (writer goroutine).
func (s *Store) markFailing(err error) {
	if s.fail.Load() == nil {
		s.log.Error("store writes are failing: the node reports not ready until they succeed again", "err", err)
		s.fail.Store(&failure{err: err, since: s.opts.Now()})
	}
}

// recover tries to make writes work again (writer goroutine): a probe
// write, then, at most every recoverEvery, a reopen. nil when writes work.
func (s *Store) recover() error {
	f := s.fail.Load()
	if f == nil {
		return nil
	}
	err := s.probe()
	if err != nil && time.Since(s.lastReopen) >= recoverEvery {
		s.lastReopen = time.Now()
		err = s.reopen()
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, f.err)
	}
	s.fail.Store(nil)
	s.log.Info("store writes work again: the node is ready", "failing_for", s.opts.Now().Sub(f.since).Round(time.Millisecond))
	return nil
}

// probe makes one small synced write: the global sequence, which is
// written with every batch that moves it anyway.
func (s *Store) probe() error {
	return s.db.Put([]byte(keyGSeq), be8(s.gseq), &opt.WriteOptions{Sync: true})
}

// reopen closes the database and opens it again, which replays its
// journal and starts a new one.
func (s *Store) reopen() error {
	if err := s.db.release(); err != nil {
		s.log.Warn("close the failing database", "err", err)
	}
	db, err := leveldb.OpenFile(s.opts.Dir, dbOptions(false))
	if err != nil {
		// Opening writes a new journal and manifest, which a full disk
		// refuses: serve reads from a read-only open meanwhile (it writes
		// nothing); the next attempt closes it and tries again.
		ro, rerr := leveldb.OpenFile(s.opts.Dir, dbOptions(true))
		if rerr == nil {
			s.db.mu.Lock()
			s.db.db = ro
			s.db.mu.Unlock()
		}
		return fmt.Errorf("reopen %s: %w", s.opts.Dir, err)
	}
	s.db.mu.Lock()
	s.db.db = db
	s.db.mu.Unlock()
	if err := s.probe(); err != nil {
		return err
	}
	s.log.Info("store reopened after failed writes", "dir", s.opts.Dir)
	return nil
}

// recovering is the writer's timer while the store fails; nil otherwise.
func (s *Store) recovering() <-chan time.Time {
	if s.fail.Load() == nil {
		return nil
	}
	return time.After(recoverEvery)
}
