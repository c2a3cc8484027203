package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// DefaultMaxBatch is the default most requests written by one group commit.
const DefaultMaxBatch = 256

// maxMaxBatch bounds MaxBatch: a larger batch only makes the slowest caller
// of the batch wait longer.
const maxMaxBatch = 1 << 16

// maxSeqCache bounds the in-memory cache of per-conversation sequence
// numbers; when it is full it is emptied and refilled lazily from the DB.
const maxSeqCache = 1 << 16

// Options configure a Store. Only Dir is required.
type Options struct {
	// Dir is the LevelDB directory, created when missing. Required.
	Dir string
	// Now is the clock used for Received times that are not given and for
	// generated ids. Zero value: time.Now.
	Now func() time.Time
	// NewID makes message ids. It must be safe for concurrent use: the
	// node's accept path (Store.NewID) calls it from every request. Zero
	// value: 26-character ULID-style ids (48-bit milliseconds + 80 random
	// bits, Crockford base32), which sort by time.
	NewID func() string
	// MaxBatch is the most requests written by one group commit (one synced
	// LevelDB write). Zero value: DefaultMaxBatch (256).
	MaxBatch int
	// Logger receives the store's logs, with component=store. Zero value:
	// logs are discarded.
	Logger *slog.Logger

	// beforeCommit, when set (tests only), runs in the writer before each
	// LevelDB write with the number of requests in the batch; an error it
	// returns is treated as a failed write.
	beforeCommit func(n int) error
	// noSearchIndex (benchmarks only) writes messages without their search
	// index keys, to measure what the index costs a write.
	noSearchIndex bool
	// convMode (tests and benchmarks only) forces how one conversation is
	// searched (searchconv.go).
	convMode convMode
}

func (o *Options) setDefaults() error {
	if o.Dir == "" {
		return fmt.Errorf("%w: Options.Dir (-data) is required", ErrInvalid)
	}
	if o.MaxBatch < 0 || o.MaxBatch > maxMaxBatch {
		return fmt.Errorf("%w: Options.MaxBatch must be between 1 and %d, got %d", ErrInvalid, maxMaxBatch, o.MaxBatch)
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = newIDGen(o.Now).next
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	o.Logger = o.Logger.With("component", "store")
	return nil
}

// Store is the durable conversation store. See the package comment for the
// key layout and the concurrency contract.
type Store struct {
	opts Options
	log  *slog.Logger
	db   *liveDB // replaced by the writer when it recovers (recover.go)

	fail       atomic.Pointer[failure] // set while writes fail
	lastReopen time.Time               // owned by the writer

	reqs chan *request
	quit chan struct{}  // closed by Close: the writer stops taking requests
	done chan struct{}  // closed when the writer has exited
	bg   sync.WaitGroup // background work on the database (dropConvIndex): Close waits for it

	closeOnce sync.Once
	closeErr  error

	commits  atomic.Uint64 // synced LevelDB writes
	requests atomic.Uint64 // requests answered by the writer
	failures atomic.Uint64 // failed synced writes

	// Owned by the writer goroutine.
	seqs  map[string]uint64 // phone → last message seq, loaded lazily
	spare *txn              // the last group's txn, emptied, for the next (writer only; see newTxn)
	gseq  uint64            // last store-global sequence number allocated
	lnext int64             // next local log offset (log.go)

	logNext atomic.Int64 // lnext as of the last successful write, for readers
}

// result is what the writer answers to one request.
type result struct {
	msg  protocol.Message
	flag bool // duplicate or changed, depending on the operation
	err  error
	// rec and recKey are the stored record of msg and its key, when the
	// operation read them (a duplicate inbound), for txn.replayed.
	rec    *record
	recKey []byte
}

type noSyncKey struct{}

// WithoutSync returns a context whose writes are acknowledged without their
// own fsync: they become durable with the next synced write, since LevelDB's
// journal is one sequential file. For writes that can be redone after a
// crash from elsewhere (the cluster log) and are followed by a synced
// checkpoint that records how far they got.
func WithoutSync(ctx context.Context) context.Context {
	return context.WithValue(ctx, noSyncKey{}, true)
}

// request is one write waiting for the writer. apply runs in the writer
// against the batch being built; it must do every check and read before its
// first put, so a request that fails leaves nothing in the batch.
type request struct {
	ctx   context.Context
	apply func(*txn) result
	res   chan result // buffered: the writer never blocks answering
	// lazy requests do not need their own fsync (see WithoutSync); a batch
	// is synced when any request in it needs it.
	lazy bool
}

// Open opens (or creates) the LevelDB store in opts.Dir and starts its writer.
// ErrLocked is Open's error when another process (another node, or
// `switchboard products import`) has the directory open.
var ErrLocked = errors.New("another switchboard node holds this data directory (stop it, or give this node its own -data)")

// dbOptions are the LevelDB options of every open. A bloom filter (10 bits
// a key, about 1 % false positives) per table answers most reads of a key
// that is not there without reading the table's blocks: every new inbound
// message looks up its sid and id keys, which do not exist yet, and without
// a filter each such miss searched a table of every level (a fifth of the
// node's CPU at its ceiling). Tables written without a filter are still
// read, without it; the filter changes nothing of what is stored.
//
// A 16 MiB write buffer (the memtable; LevelDB's default is 4 MiB) and
// tables without snappy compression: each message puts about a dozen
// search index keys, and compacting them was the largest item of the
// node's CPU (issue 22). Measured on a store of 1,000,000 messages taking
// 200,000 more (BenchmarkWriteSteady, BENCHMARKS.md "Issue 22: store write
// amplification"): CPU 54 → 21 s, the process's RSS 104 → 206 MiB (two
// memtables and their garbage), disk +19 % (index keys have no values and
// are already prefix-compressed in their blocks). Tables written with
// compression stay readable.
func dbOptions(readOnly bool) *opt.Options {
	return &opt.Options{
		Filter:      filter.NewBloomFilter(10),
		ReadOnly:    readOnly,
		WriteBuffer: 16 << 20,
		Compression: opt.NoCompression,
	}
}

func Open(opts Options) (*Store, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	db, err := leveldb.OpenFile(opts.Dir, dbOptions(false))
	if errors.Is(err, syscall.EWOULDBLOCK) {
		err = ErrLocked // the directory's LOCK file is held (flock)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	s := &Store{
		opts: opts,
		log:  opts.Logger,
		db:   &liveDB{db: db},
		reqs: make(chan *request, opts.MaxBatch),
		quit: make(chan struct{}),
		done: make(chan struct{}),
		seqs: make(map[string]uint64),
	}
	if err := s.init(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	go s.run()
	s.log.Info("store open", "dir", opts.Dir, "max_batch", opts.MaxBatch, "global_seq", s.gseq)
	return s, nil
}

// init checks the schema version, loads the global sequence counter and
// makes sure the search index is complete.
func (s *Store) init() error {
	v, err := s.db.Get([]byte(keyVer), nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		// A new store, or one with data from before the version key: refuse
		// the latter rather than guess.
		empty := false
		if err := s.db.scan(nil, func(it iterator.Iterator) error { empty = !it.First(); return nil }); err != nil {
			return err
		}
		if !empty {
			return errors.New("directory holds a LevelDB without a switchboard schema version")
		}
		if err := s.db.Put([]byte(keyVer), []byte(schemaV1), &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	case string(v) != schemaV1:
		return fmt.Errorf("unknown schema version %q (this build reads %q)", v, schemaV1)
	}
	g, err := s.db.Get([]byte(keyGSeq), nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		s.gseq = 0
	case err != nil:
		return fmt.Errorf("read global sequence: %w", err)
	case len(g) != 8:
		return fmt.Errorf("corrupt global sequence (%d bytes)", len(g))
	default:
		s.gseq = binary.BigEndian.Uint64(g)
	}
	if err := s.loadLogNext(); err != nil {
		return err
	}
	s.logNext.Store(s.lnext)
	return s.initSearch() // search.go: index messages stored before the index existed
}

// Close stops the writer, fails requests still queued with ErrClosed and
// closes the database. A batch already being written is finished first (its
// callers get their real answers). Close is idempotent and safe to call
// concurrently; every call returns the same error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		s.bg.Wait()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
		s.log.Info("store closed", "err", s.closeErr)
	})
	return s.closeErr
}

// Ready reports nil while the store is open, its writer runs and its
// writes succeed. While writes fail (a full disk) it returns an error that
// matches ErrUnavailable and says why and since when; the store recovers
// by itself (recover.go).
func (s *Store) Ready() error {
	select {
	case <-s.quit:
		return ErrClosed
	case <-s.done:
		return ErrClosed
	default:
	}
	if f := s.failing(); f != nil {
		return fmt.Errorf("%w since %s: %v", ErrUnavailable, f.since.UTC().Format(time.RFC3339), f.err)
	}
	return nil
}

// Stats are counters since Open, for metrics.
type Stats struct {
	Commits  uint64 // synced LevelDB writes (one per group commit)
	Requests uint64 // write requests answered by the writer
	Failures uint64 // synced writes that failed
}

// Stats returns the write counters. Requests/Commits is the mean group
// commit size.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Requests: s.requests.Load(), Failures: s.failures.Load()}
}

// do hands one write to the writer and waits for its answer. If ctx ends
// after the request was handed over, do returns ctx's error, but the write
// may still be committed (as with any database whose client gives up).
func (s *Store) do(ctx context.Context, apply func(*txn) result) result {
	if err := ctx.Err(); err != nil {
		return result{err: err}
	}
	r := &request{ctx: ctx, apply: apply, res: make(chan result, 1), lazy: ctx.Value(noSyncKey{}) != nil}
	select {
	case <-s.quit:
		return result{err: ErrClosed}
	default:
	}
	select {
	case s.reqs <- r:
	case <-s.quit:
		return result{err: ErrClosed}
	case <-ctx.Done():
		return result{err: ctx.Err()}
	}
	select {
	case res := <-r.res:
		return res
	case <-ctx.Done():
		return result{err: ctx.Err()}
	case <-s.done:
		// The writer is gone; it may have answered just before leaving.
		select {
		case res := <-r.res:
			return res
		default:
			return result{err: ErrClosed}
		}
	}
}

// run is the writer: the only goroutine that writes to the database. It
// takes every request waiting (up to MaxBatch), applies them to one batch
// and writes that batch with one synced write (group commit).
func (s *Store) run() {
	defer close(s.done)
	batch := make([]*request, 0, s.opts.MaxBatch)
	for {
		// Close wins over queued requests, so that after Close returns
		// nothing more is written.
		select {
		case <-s.quit:
			s.failQueued()
			return
		default:
		}
		var first *request
		select {
		case first = <-s.reqs:
		case <-s.recovering():
			s.recover() // logs when it works; requests get the error
			continue
		case <-s.quit:
			s.failQueued()
			return
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commit(batch)
		clear(batch) // drop references to answered requests
		// The callers just answered are runnable; let them hand in their
		// next requests before the next batch is cut, or closed-loop
		// writers alternate between a batch of one and a batch of the rest.
		runtime.Gosched()
	}
}

func (s *Store) failQueued() {
	for {
		select {
		case r := <-s.reqs:
			r.res <- result{err: ErrClosed}
		default:
			return
		}
	}
}

// commit applies a batch of requests and writes them with one synced
// write. Lazy requests (WithoutSync) in a batch that also holds synced
// ones are written first, in a write of their own without fsync, and
// answered at once, so they never wait for the others' fsync. Reordering
// requests within one batch is safe: a caller waits for its answer before
// it sends its next request, so requests of one batch are concurrent and
// any order between them is an order they could have arrived in.
func (s *Store) commit(batch []*request) {
	var lazy, synced []*request
	for _, r := range batch {
		if r.lazy {
			lazy = append(lazy, r)
		} else {
			synced = append(synced, r)
		}
	}
	if len(lazy) > 0 && len(synced) > 0 {
		s.commitGroup(lazy, false)
		s.commitGroup(synced, true)
		return
	}
	s.commitGroup(batch, len(synced) > 0)
}

// commitGroup applies requests and writes them in one write, synced or not.
func (s *Store) commitGroup(batch []*request, sync bool) {
	// While writes fail, take requests only once a probe (or a reopen)
	// works, and before they read: a reopen may replay a batch that failed.
	if err := s.recover(); err != nil {
		for _, r := range batch {
			r.res <- result{err: err}
		}
		s.requests.Add(uint64(len(batch)))
		return
	}
	t := newTxn(s)
	results := make([]result, len(batch))
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = result{err: err} // the caller has gone: write nothing
			continue
		}
		results[i] = r.apply(t)
	}
	if t.gseq != s.gseq {
		t.batch.Put([]byte(keyGSeq), be8(t.gseq))
	}
	if t.lnext != s.lnext {
		t.batch.Put([]byte(keyLogNext), be8(uint64(t.lnext)))
	}
	if t.batch.Len() > 0 {
		var err error
		if s.opts.beforeCommit != nil {
			err = s.opts.beforeCommit(len(batch))
		}
		if err == nil {
			err = s.db.Write(&t.batch, &opt.WriteOptions{Sync: sync})
		}
		if err != nil {
			// Nothing of this batch is known to be stored: fail every
			// request. Its Sid/ref/status/outbox effects are dropped with
			// the txn, but the seqs it allocated stay used (gaps, never
			// reuse): goleveldb may have written the batch to its journal
			// before the sync failed, and if the next open replays it, it
			// must not overwrite messages stored after it. Retrying callers
			// are safe because appends are deduplicated.
			switch {
			case errors.Is(err, leveldb.ErrClosed):
				err = ErrClosed
			case !errors.Is(err, ErrUnavailable):
				s.markFailing(err)
			}
			s.log.Error("group commit failed", "requests", len(batch), "err", err)
			for i := range results {
				if results[i].err == nil {
					results[i] = result{err: fmt.Errorf("store: commit: %w", err)}
				}
			}
			s.failures.Add(1)
		}
		t.publishSeqs()
		if err == nil {
			// Log offsets are consecutive: a failed write gives its
			// offsets out again (the next write of them overwrites).
			s.lnext = t.lnext
			s.logNext.Store(s.lnext)
		}
		s.commits.Add(1)
	}
	for i, r := range batch {
		r.res <- results[i]
	}
	s.requests.Add(uint64(len(batch)))
	s.keepTxn(t)
}

// lastSeq finds the last message seq of a conversation in the database.
func (s *Store) lastSeq(phone string) (uint64, error) {
	var seq uint64
	err := s.db.scan(convPrefix(phone), func(it iterator.Iterator) error {
		if !it.Last() {
			return nil
		}
		var err error
		seq, err = seqOfMsgKey(it.Key())
		return err
	})
	return seq, err
}
