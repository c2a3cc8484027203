package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Navigation analytics (package nav) keep their state in the same LevelDB,
// under prefixes of their own:
//
//	p/<product id>          product JSON   the catalog
//	v/<product id>          counts JSON    co-view counts: category → n
//	n/offset                <n8>           position in the RabbitMQ nav stream the counters include
//	n/head                  bytes          what identifies that stream (its first entry, encoded by the node)
//	u/<user id>             user record    a shop user's viewed products and phone link (nav's compact binary form)
//
// These writes bypass the group-commit writer and are not synced: they are
// analytics, not acknowledged messages, so a crash may lose the last
// unflushed moment of counters (nav flushes every 100 ms by default). The
// catalog is the exception: PutProduct is synced because an admin's 204
// promises it.
const (
	pNavProduct = "p/"
	pNavCounts  = "v/"
	pNavUser    = "u/"
)

// NavBatch collects navigation writes for one WriteNav. The zero value is
// empty and ready to use; it is not safe for concurrent use.
type NavBatch struct {
	b leveldb.Batch
}

// PutCounts sets the co-view counts of a product (JSON, owned by nav).
func (b *NavBatch) PutCounts(product string, v []byte) { b.b.Put([]byte(pNavCounts+product), v) }

// PutUser sets a user's history (encoded by nav).
func (b *NavBatch) PutUser(user string, v []byte) { b.b.Put([]byte(pNavUser+user), v) }

// DeleteUser removes a user's history.
func (b *NavBatch) DeleteUser(user string) { b.b.Delete([]byte(pNavUser + user)) }

// PutProduct sets a catalog entry (JSON, owned by nav).
func (b *NavBatch) PutProduct(id string, v []byte) { b.b.Put([]byte(pNavProduct+id), v) }

// Len is the number of writes in the batch.
func (b *NavBatch) Len() int { return b.b.Len() }

// Reset empties the batch for reuse.
func (b *NavBatch) Reset() { b.b.Reset() }

// WriteNav applies b atomically, without syncing the journal (see above).
// It is safe to call concurrently with every other method.
func (s *Store) WriteNav(b *NavBatch) error {
	if b.b.Len() == 0 {
		return nil
	}
	if err := s.db.Write(&b.b, &opt.WriteOptions{Sync: false}); err != nil {
		return fmt.Errorf("store: write nav batch (%d writes): %w", b.b.Len(), err)
	}
	return nil
}

// PutProduct stores one catalog entry, synced.
func (s *Store) PutProduct(id string, v []byte) error {
	if err := s.db.Put([]byte(pNavProduct+id), v, &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("store: put product %s: %w", id, err)
	}
	return nil
}

// NavProducts calls fn for every catalog entry, in key order.
func (s *Store) NavProducts(fn func(id string, v []byte) error) error {
	return s.navScan(pNavProduct, fn)
}

// NavCounts calls fn for every product's co-view counts, in key order.
func (s *Store) NavCounts(fn func(product string, v []byte) error) error {
	return s.navScan(pNavCounts, fn)
}

// NavUsers calls fn for every stored user history, in key order.
func (s *Store) NavUsers(fn func(user string, v []byte) error) error {
	return s.navScan(pNavUser, fn)
}

// navScan iterates one prefix; fn's value is only valid during the call.
func (s *Store) navScan(prefix string, fn func(key string, v []byte) error) error {
	var fnErr error
	err := s.db.scan([]byte(prefix), func(it iterator.Iterator) error {
		for it.Next() {
			if fnErr = fn(string(it.Key()[len(prefix):]), it.Value()); fnErr != nil {
				return nil
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: scan %s: %w", prefix, err)
	}
	return nil
}

// keyNavOffset holds the position in the nav event stream (RabbitMQ) up to
// which the stored counters are complete; it is written in the same batch
// as the counters it describes.
const keyNavOffset = "n/offset"

// PutStreamOffset records the last applied stream offset.
func (b *NavBatch) PutStreamOffset(off int64) { b.b.Put([]byte(keyNavOffset), be8(uint64(off))) }

// keyNavHead identifies the stream keyNavOffset is a position in (a
// stream deleted and declared again starts over at offset 0).
const keyNavHead = "n/head"

// PutStreamHead records what identifies the stream (opaque to the store).
func (b *NavBatch) PutStreamHead(v []byte) { b.b.Put([]byte(keyNavHead), v) }

// NavStreamHead returns what PutStreamHead stored, or nil when nothing was.
func (s *Store) NavStreamHead() ([]byte, error) {
	v, err := s.db.Get([]byte(keyNavHead), nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("store: read nav stream head: %w", err)
	}
	return v, nil
}

// NavStreamOffset returns the last stream offset stored by WriteNav; ok is
// false when none was.
func (s *Store) NavStreamOffset() (off int64, ok bool, err error) {
	v, err := s.db.Get([]byte(keyNavOffset), nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("store: read nav stream offset: %w", err)
	case len(v) != 8:
		return 0, false, fmt.Errorf("store: corrupt nav stream offset (%d bytes)", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}
