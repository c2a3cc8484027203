package switchboard

// This file holds what a node does about a hole: entries of the stream log
// removed (by its retention policy) before this node applied them, found
// while it runs or at start when no snapshot covered them. Applying what
// follows a hole would make this node's store and routing differ from the
// other nodes' for good, and a checkpoint past the hole would hide it
// from the next start. So the node stops applying at the hole and reports
// not ready; and since it cannot load a snapshot under live sessions, it
// waits until one reaches past the hole and then fails (Node.Failed: the
// binary exits with status 1), so that its supervisor (systemd, Heroku,
// compose: deploy/) restarts it, and the restarted node, whose checkpoint
// is still before the hole, starts from that snapshot (cluster.start).

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/internal/pause"
)

// holeRecheck is how often a node stopped at a hole looks for a snapshot
// past it (Config.holeRecheck in tests).
const holeRecheck = 10 * time.Second

// hole stops applying at entries from..to, missing from the log (apply,
// on the consumer's goroutine).
func (c *cluster) hole(ctx context.Context, from, to int64) {
	c.halted = true
	c.setFault(fmt.Errorf("cluster log: entries %d to %d were removed from the stream before this node applied them (a retention policy on the log?); this node stopped applying the log there and restarts once a snapshot covers them (docs/architecture.md, failure cases)", from, to))
	c.log.Error("cluster log has a hole: this node stopped applying and reports not ready", "missing_from", from, "missing_to", to, "applied_up_to", c.queued)
	applied := c.queued
	c.goFunc(func() { c.awaitSnapshot(ctx, applied) })
}

// awaitSnapshot fails the node once a snapshot past offset (this node's
// last queued entry) whose next entry the log holds is published.
func (c *cluster) awaitSnapshot(ctx context.Context, offset int64) {
	for {
		if at, ok := c.snapshotPast(ctx, offset); ok {
			c.fail(fmt.Errorf("cluster log: a snapshot at offset %d now covers the entries removed before this node applied them; restarting to load it", at))
			return
		}
		if !pause.For(ctx, c.holeRecheck) {
			return
		}
	}
}

// snapshotPast returns the offset of a published snapshot that a node
// applied up to offset could start from: past offset, and reaching the
// log's first entry. It reads only the snapshots' headers.
func (c *cluster) snapshotPast(ctx context.Context, offset int64) (int64, bool) {
	last, ok := c.bus.(bus.StreamLast)
	if c.snaps == nil || !ok {
		return 0, false
	}
	rctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	first, err := c.elog.Head(rctx)
	if err != nil {
		return 0, false
	}
	ds, err := last.Last(rctx, snapshotQueue, 250*time.Millisecond)
	if err != nil {
		return 0, false
	}
	best := int64(-1)
	for _, d := range ds {
		meta, err := snapshotHeader(d.Body)
		if err == nil && meta.Offset > offset && meta.Offset+1 >= first.Offset {
			best = max(best, meta.Offset)
		}
	}
	return best, best >= 0
}
