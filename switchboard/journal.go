package switchboard

// This file holds how accepted events become durable before the node
// answers for them: on the local log an append is durable (direct); on
// the stream log, whose broker may be away, the node keeps a journal of
// them in its store and publishes them again until the log has them.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/switchboard/eventlog"
	"github.com/switchboard/switchboard/switchboard/store"
)

// acceptor makes an event this node accepted (a webhook's message, a
// reply, a status) durable before it is answered for.
type acceptor interface {
	// accept makes the event (id, key, body: v encoded) durable; it
	// reaches the log. item, when not nil, is the message the event stores
	// when applied; dup says an inbound item's message (by its sid) is
	// stored already, and nothing was appended.
	accept(ctx context.Context, id, key string, v any, body []byte, item *store.LogItem) (dup bool, err error)
	// seen records that the applier met this node's event id in the log.
	// Called by the applier only.
	seen(id string)
	// trim forgets what the log now has, after a checkpoint. Called by
	// the applier only.
	trim(ctx context.Context)
	// run does the background work until ctx ends.
	run(ctx context.Context)
}

// direct is the acceptor of the local log: an append is durable, and it
// stores the event's message in the same synced write (as applying the
// entry would, store.AppendLogApplied), so a node alone has a webhook's
// message in its store when it answers, as it always did, and writes it
// once: the log hands the entry to this node's applier with what the
// write stored and the event v (eventlog.Applied), so the applier neither
// stores it again nor decodes it. Routing still happens when the entry is
// applied. After a restart the entry is read back from the store and
// applied as any other (ApplyLog finds the message stored by it: fresh).
type direct struct{ log *eventlog.Local }

func (d direct) accept(ctx context.Context, _, key string, v any, body []byte, item *store.LogItem) (dup bool, err error) {
	if item == nil {
		return false, d.log.Append(ctx, key, body)
	}
	// The store finds a retry by its sid (or ref) in the same write.
	res, err := d.log.AppendApplied(ctx, key, body, *item, v)
	return err == nil && !res.Fresh, err
}
func (direct) seen(string)             {}
func (direct) trim(context.Context)    {}
func (direct) run(ctx context.Context) {}

// journal is the acceptor of the stream log.
type journal struct {
	c *cluster

	// Entries whose publish failed or was skipped (the broker away), until
	// a read of the journal no longer finds them (they were seen in the
	// log and trimmed).
	failMu sync.Mutex
	failed map[string]bool
	scans  atomic.Int64 // journal reads by the republisher, for tests

	applied []string // ids seen in the log since the last checkpoint (the applier's)
}

func newJournal(c *cluster) *journal { return &journal{c: c, failed: map[string]bool{}} }

func (j *journal) seen(id string) { j.applied = append(j.applied, id) }

// trim deletes the journal entries the log has (checkpoint).
func (j *journal) trim(ctx context.Context) {
	if len(j.applied) == 0 {
		return
	}
	if err := j.c.store.DeleteJournal(ctx, j.applied...); err != nil {
		j.c.log.Warn("trim journal", "err", err)
		return
	}
	j.applied = j.applied[:0]
}

// accept makes an event this node accepted durable in the journal and
// publishes it. The journal write and the publish run side by side, so the
// event reaches the log without waiting for the fsync; append returns once
// the journal has it and the publish is done or failed (a publish that
// fails is retried by the republisher). An event can reach the log before
// its journal entry is written; the entry is then trimmed at a later
// checkpoint, or republished once and applied as a duplicate, which
// changes nothing.
func (j *journal) accept(ctx context.Context, id, key string, _ any, body []byte, item *store.LogItem) (dup bool, err error) {
	c := j.c
	if item != nil && item.Inbound != nil {
		// A retry of a message the log already brought here is not
		// published again (applying it again would change nothing).
		if ok, err := c.store.HasSid(item.Inbound.Sid); ok && err == nil {
			return true, nil
		}
	}
	var published atomic.Bool
	done := make(chan struct{})
	if c.elog.Ready() != nil {
		// The broker is away: the journal will have it; the republisher
		// sends it when the broker is back. Do not keep Twilio or the
		// agent waiting.
		close(done)
	} else {
		go func() {
			defer close(done)
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishWait)
			defer cancel()
			start := c.now()
			if err := c.elog.Append(pctx, key, body); err != nil {
				c.log.Warn("publish to the log failed; the journal will retry", "key", key, "id", id, "err", err)
				return
			}
			published.Store(true)
			c.metrics.busLatency.Observe(c.now().Sub(start))
		}()
	}
	err = c.store.PutJournal(ctx, store.JournalEntry{ID: id, Key: key, Body: body, At: c.now()})
	<-done
	if err == nil && !published.Load() {
		// Only now that the entry is in the journal: a read of the journal
		// that does not find it forgets the failure.
		j.publishFailed(id)
	}
	return false, err
}

// publishFailed notes that journal entry id may not have reached the log.
func (j *journal) publishFailed(ids ...string) {
	j.failMu.Lock()
	defer j.failMu.Unlock()
	for _, id := range ids {
		j.failed[id] = true
	}
}

// run publishes journal entries that have not shown up in the log:
// those older than republishAfter, read every journalSweepEvery while
// entries whose publish failed are in the journal (at start: everything
// in it), and every journalScanEvery otherwise.
func (j *journal) run(ctx context.Context) {
	c := j.c
	t := time.NewTicker(journalSweepEvery)
	defer t.Stop()
	first := true
	var lastScan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		j.failMu.Lock()
		failures := len(j.failed)
		j.failMu.Unlock()
		now := c.now()
		if !first && failures == 0 && now.Sub(lastScan) < journalScanEvery {
			continue
		}
		var due []store.JournalEntry
		present := map[string]bool{}
		err := c.store.Journal(func(e store.JournalEntry) error {
			present[e.ID] = true
			if now.Sub(e.At) >= republishAfter {
				due = append(due, e)
			}
			return nil
		})
		if err != nil {
			c.log.Error("read journal", "err", err)
			continue
		}
		j.failMu.Lock()
		if first {
			for id := range present {
				j.failed[id] = true // written before this start
			}
		}
		for id := range j.failed {
			if !present[id] {
				delete(j.failed, id) // in the log and trimmed
			}
		}
		j.failMu.Unlock()
		first, lastScan = false, now
		j.scans.Add(1)
		if !j.republishAll(ctx, due) {
			ids := make([]string, len(due))
			for i, e := range due {
				ids[i] = e.ID
			}
			j.publishFailed(ids...)
		}
	}
}

// republishAll publishes entries, oldest first per routing key: entries of
// one key one after another (the log keeps their order), up to
// republishers keys at a time, so that a journal that grew during a broker
// outage drains quickly. It stops at the first failure (the broker is
// away: the next sweep tries again), publishing nothing of that key after
// it, and reports whether every entry was published.
func (j *journal) republishAll(ctx context.Context, entries []store.JournalEntry) bool {
	c := j.c
	const republishers = 64
	var keys []string
	byKey := map[string][]store.JournalEntry{}
	for _, e := range entries { // oldest id first
		if byKey[e.Key] == nil {
			keys = append(keys, e.Key)
		}
		byKey[e.Key] = append(byKey[e.Key], e)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	sem := make(chan struct{}, republishers)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, key := range keys {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, e := range byKey[key] {
				pctx, cancel := context.WithTimeout(ctx, publishWait)
				err := c.elog.Append(pctx, e.Key, e.Body)
				cancel()
				if err != nil {
					if ctx.Err() == nil {
						c.log.Warn("republish journal entry", "id", e.ID, "err", err)
					}
					failed.Store(true)
					stop()
					return
				}
			}
		}()
	}
	wg.Wait()
	return !failed.Load() && ctx.Err() == nil
}
