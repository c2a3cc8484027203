package switchboard

// This file holds log snapshots: a node's applied state (its checkpoint
// and its store's applied keys) at a log offset, published to RabbitMQ so
// that a node whose next entry the log no longer holds (it joins after a
// retention policy removed the log's start, or was away longer than the
// retention window) can start from it instead of from a hole.
//
// Where snapshots live: a second stream, <exchange>.snapshots, fed by the
// topic exchange with the keys snapshot.<node> (not among logBindings:
// the log never holds them). A stream, not a last-value or classic queue:
// reading one is not destructive, so every joining node reads the same
// snapshots, and the broker gives "the latest" directly (a consumer that
// starts at "last", eventlog/amqpbus Last). Its retention keeps the last
// few: a new snapshots stream is declared with x-max-length-bytes of
// snapshotKeep × maxSnapshotBytes in segments of maxSnapshotBytes. The
// broker does not say which snapshot is usable; the node does: the one
// with the highest offset whose next entry the log still holds.
//
// Every node that has caught up publishes one after a checkpoint once
// snapshotEvery (-snapshot-every) entries have been applied since its
// last: snapshots are idempotent (every node has the same state at an
// offset), so several nodes publishing only costs broker space, bounded
// by the retention above.
//
// Size: a snapshot holds every stored message, compressed (gzip). One
// larger than maxSnapshotBytes compressed is not published (logged): a
// cluster that large must keep its log longer than any node stays away,
// or run without retention (-log-max-age 0), as before snapshots.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/route"
	"github.com/switchboard/switchboard/switchboard/store"
)

const (
	snapshotQueue = "snapshots"
	// maxSnapshotBytes bounds a published (compressed) snapshot: below
	// RabbitMQ's default max_message_size (128 MiB on 3.x).
	maxSnapshotBytes = 64 << 20
	// maxSnapshotRaw bounds what a snapshot decompresses to.
	maxSnapshotRaw = 1 << 30
	snapshotKeep   = 3
	snapshotMagic  = "SBSNAP1\n"
	maxSnapKey     = 1 << 10
	maxSnapValue   = 4 << 20
)

// snapshotMeta heads a snapshot.
type snapshotMeta struct {
	Offset     int64           `json:"offset"` // the last log entry it reflects
	Node       string          `json:"node"`
	At         int64           `json:"at"` // unix ms
	Gseq       uint64          `json:"gseq"`
	Keys       int             `json:"keys"`
	Checkpoint json.RawMessage `json:"checkpoint"`
}

// encodeSnapshot writes meta and kvs (meta.Keys of them) as one gzip
// stream: the magic, the meta's length and JSON, then each key and value
// with their lengths (uvarints). gzip's CRC-32 covers all of it.
func encodeSnapshot(meta snapshotMeta, kvs []store.KV) ([]byte, error) {
	meta.Keys = len(kvs)
	mj, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	var n [binary.MaxVarintLen64]byte
	put := func(b []byte) {
		zw.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
		zw.Write(b)
	}
	zw.Write([]byte(snapshotMagic))
	put(mj)
	for _, kv := range kvs {
		put(kv.Key)
		put(kv.Value)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeSnapshot reads a snapshot published by any node (outside input):
// anything malformed, truncated, too large or holding a key outside the
// applied state is refused with an error naming what.
func decodeSnapshot(b []byte) (snapshotMeta, checkpoint, []store.KV, error) {
	var meta snapshotMeta
	var cp checkpoint
	fail := func(format string, args ...any) (snapshotMeta, checkpoint, []store.KV, error) {
		return meta, cp, nil, fmt.Errorf("snapshot: "+format, args...)
	}
	if len(b) > maxSnapshotBytes {
		return fail("%d bytes, more than %d", len(b), maxSnapshotBytes)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return fail("not gzip: %v", err)
	}
	zb := bufio.NewReader(zr)
	if meta, err = readSnapshotHeader(zb); err != nil {
		return meta, cp, nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(zb, maxSnapshotRaw+1))
	if err != nil {
		return fail("decompress: %v", err)
	}
	if len(raw) > maxSnapshotRaw {
		return fail("decompresses to more than %d bytes", maxSnapshotRaw)
	}
	next := func(limit uint64) ([]byte, bool) {
		l, n := binary.Uvarint(raw)
		if n <= 0 || l > limit || l > uint64(len(raw)-n) {
			return nil, false
		}
		v := raw[n : n+int(l)]
		raw = raw[n+int(l):]
		return v, true
	}
	if meta.Offset < 0 || meta.Keys < 0 || meta.Keys > len(raw)/2 {
		return fail("header: offset %d, keys %d out of range", meta.Offset, meta.Keys)
	}
	if err := json.Unmarshal(meta.Checkpoint, &cp); err != nil {
		return fail("checkpoint: %v", err)
	}
	if cp.Offset != meta.Offset {
		return fail("checkpoint offset %d is not the snapshot's %d", cp.Offset, meta.Offset)
	}
	kvs := make([]store.KV, 0, meta.Keys)
	for i := range meta.Keys {
		k, ok := next(maxSnapKey)
		if !ok {
			return fail("entry %d: truncated or oversized key", i)
		}
		v, ok := next(maxSnapValue)
		if !ok {
			return fail("entry %d: truncated or oversized value", i)
		}
		if !store.StateKey(k) {
			return fail("entry %d: key %q is not part of the applied state", i, k)
		}
		kvs = append(kvs, store.KV{Key: k, Value: v})
	}
	if len(raw) != 0 {
		return fail("%d bytes after the last entry", len(raw))
	}
	return meta, cp, kvs, nil
}

// snapshotHeader reads a snapshot's meta without decompressing the rest
// (decodeSnapshot checks a snapshot whole when it is loaded).
func snapshotHeader(b []byte) (snapshotMeta, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return snapshotMeta{}, fmt.Errorf("snapshot: not gzip: %v", err)
	}
	return readSnapshotHeader(bufio.NewReader(zr))
}

// readSnapshotHeader reads the magic and the meta that start a
// decompressed snapshot.
func readSnapshotHeader(r *bufio.Reader) (snapshotMeta, error) {
	var meta snapshotMeta
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapshotMagic {
		return meta, errors.New("snapshot: not a switchboard snapshot (bad magic)")
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxSnapValue {
		return meta, errors.New("snapshot: truncated or oversized header")
	}
	mj := make([]byte, n)
	if _, err := io.ReadFull(r, mj); err != nil {
		return meta, errors.New("snapshot: truncated or oversized header")
	}
	if err := json.Unmarshal(mj, &meta); err != nil {
		return meta, fmt.Errorf("snapshot: header: %v", err)
	}
	return meta, nil
}

// snapshots publishes and reads the cluster's snapshots (stream log only).
type snapshots struct {
	b        bus.Bus
	every    int
	declared atomic.Bool
	busy     atomic.Bool // a publish is under way
	last     int64       // offset of this node's last snapshot (applier's)
	always   bool        // a node without a checkpoint starts from one (Config.joinFromSnapshot)
}

// needed reports whether a node that has applied the log up to offset
// starts from a snapshot, on a log whose first entry is first.
func (s *snapshots) needed(offset, first int64) bool {
	return s != nil && (first > offset+1 || (s.always && offset < 0))
}

func newSnapshots(b bus.Bus, every int) *snapshots {
	return &snapshots{b: b, every: every, last: -1}
}

// declare makes sure the snapshots stream exists (a stream subscription
// declares it; nothing needs its deliveries).
func (s *snapshots) declare(ctx context.Context) error {
	if s.declared.Load() {
		return nil
	}
	sub, err := s.b.Subscribe(ctx, bus.SubscribeOptions{
		Queue: snapshotQueue, Bindings: []string{"snapshot.#"}, Stream: true, Offset: -1,
		Retention: bus.Retention{MaxBytes: snapshotKeep * maxSnapshotBytes, SegmentBytes: maxSnapshotBytes},
	}, func(context.Context, bus.Delivery) error { return nil })
	if err != nil {
		return fmt.Errorf("declare the snapshots stream: %w", err)
	}
	sub.Close()
	s.declared.Store(true)
	return nil
}

// maybeSnapshot publishes a snapshot after the checkpoint blob was saved
// at c.offset, when one is due. The store is read here, on the applier
// (the state must be the one at c.offset); encoding and publishing run on
// their own goroutine, one at a time.
func (c *cluster) maybeSnapshot(ctx context.Context, blob []byte) {
	s := c.snaps
	if s == nil || s.every <= 0 || !c.caughtUp.Load() || c.offset-s.last < int64(s.every) || s.busy.Load() {
		return
	}
	var kvs []store.KV
	gseq, err := c.store.ExportState(func(k, v []byte) error {
		kvs = append(kvs, store.KV{Key: bytes.Clone(k), Value: bytes.Clone(v)})
		return nil
	})
	if err != nil {
		c.log.Error("snapshot: read the store", "err", err)
		return
	}
	s.last = c.offset
	s.busy.Store(true)
	meta := snapshotMeta{Offset: c.offset, Node: c.node, At: c.now().UnixMilli(), Gseq: gseq, Checkpoint: blob}
	c.goFunc(func() {
		defer s.busy.Store(false)
		body, err := encodeSnapshot(meta, kvs)
		if err == nil && len(body) > maxSnapshotBytes {
			err = fmt.Errorf("%d bytes compressed, more than %d: not published (see snapshot.go: Size)", len(body), maxSnapshotBytes)
		}
		if err == nil {
			err = s.declare(ctx)
		}
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = s.b.Publish(pctx, "snapshot."+c.node, body)
			cancel()
		}
		if err != nil {
			c.log.Warn("snapshot not published", "offset", meta.Offset, "err", err)
			return
		}
		c.log.Info("snapshot published", "offset", meta.Offset, "keys", len(kvs), "bytes", len(body))
	})
}

// errNoSnapshot: no published snapshot lets this node resume where the log
// now starts.
var errNoSnapshot = errors.New("no snapshot reaches the log's first entry")

// loadSnapshot makes the latest usable snapshot this node's state: one
// whose next entry is in the log (first is the log's first offset). Called
// by start before entries pass the gate, so offset and queued are its.
func (c *cluster) loadSnapshot(ctx context.Context, first int64) error {
	last, ok := c.snaps.b.(bus.StreamLast)
	if !ok {
		return errNoSnapshot
	}
	began := time.Now()
	ds, err := last.Last(ctx, snapshotQueue, 250*time.Millisecond)
	if errors.Is(err, bus.ErrNoQueue) {
		return errNoSnapshot
	}
	if err != nil {
		return fmt.Errorf("read snapshots: %w", err)
	}
	var best *snapshotMeta
	var bestCP checkpoint
	var bestKVs []store.KV
	for _, d := range ds {
		meta, cp, kvs, err := decodeSnapshot(d.Body)
		if err != nil {
			c.log.Error("snapshot refused", "stream_offset", d.Offset, "err", err)
			continue
		}
		if meta.Offset+1 >= first && meta.Offset > c.offset && (best == nil || meta.Offset > best.Offset) {
			best, bestCP, bestKVs = &meta, cp, kvs
		}
	}
	if best == nil {
		return errNoSnapshot
	}
	read := time.Now()
	// Unsynced: the checkpoint below is the synced write (store.WithoutSync).
	// A node killed before it has no checkpoint, so it loads a snapshot
	// again at its next start and imports it over what it had written
	// (store.TestImportCrash).
	if err := c.store.ImportState(store.WithoutSync(ctx), bestKVs, best.Gseq); err != nil {
		return err
	}
	bestCP.Head = &c.head
	blob, _ := json.Marshal(bestCP)
	if err := c.store.SaveCheckpoint(ctx, nil, blob); err != nil {
		return err
	}
	imported := time.Now()
	convs, err := storedConvs(c.store)
	if err != nil {
		return err
	}
	if err := c.route(ctx, func() {
		c.router.engine = route.New(c.capacity)
		c.current, c.recent, c.recentSet, c.dead, c.dirty = map[string]string{}, nil, map[string]bool{}, map[string]string{}, map[string]bool{}
		c.restoreCheckpoint(bestCP, convs)
	}); err != nil {
		return err
	}
	c.snaps.last = best.Offset
	c.log.Info("snapshot loaded", "offset", best.Offset, "from_node", best.Node, "keys", len(bestKVs), "conversations", len(convs), "read", read.Sub(began), "import", imported.Sub(read), "took", time.Since(began))
	return nil
}
