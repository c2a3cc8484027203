package switchboard

// This file holds the journal: events accepted while the log may not have them yet, published again until it does.

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/switchboard/store"
)

// append makes an event this node accepted durable in the journal and
// publishes it. The journal write and the publish run side by side, so the
// event reaches the log without waiting for the fsync; append returns once
// the journal has it and the publish is done or failed (a publish that
// fails is retried by the republisher). An event can reach the log before
// its journal entry is written; the entry is then trimmed at a later
// checkpoint, or republished once and applied as a duplicate, which
// changes nothing.
func (c *cluster) append(ctx context.Context, id, key string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var published atomic.Bool
	done := make(chan struct{})
	if c.n.bus.Ready() != nil {
		// The broker is away: the journal will have it; the republisher
		// sends it when the broker is back. Do not keep Twilio or the
		// agent waiting.
		close(done)
	} else {
		go func() {
			defer close(done)
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishWait)
			defer cancel()
			start := c.n.now()
			if err := c.n.bus.Publish(pctx, key, body); err != nil {
				c.log.Warn("publish to the log failed; the journal will retry", "key", key, "id", id, "err", err)
				return
			}
			published.Store(true)
			c.n.metrics.busLatency.Observe(c.n.now().Sub(start))
		}()
	}
	err = c.n.store.PutJournal(ctx, store.JournalEntry{ID: id, Key: key, Body: body, At: c.n.now()})
	<-done
	if err == nil && !published.Load() {
		// Only now that the entry is in the journal: a read of the journal
		// that does not find it forgets the failure.
		c.publishFailed(id)
	}
	return err
}

// publishFailed notes that journal entry id may not have reached the log.
func (c *cluster) publishFailed(ids ...string) {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	for _, id := range ids {
		c.failed[id] = true
	}
}

// republish publishes journal entries that have not shown up in the log:
// those older than republishAfter, read every journalSweepEvery while
// entries whose publish failed are in the journal (at start: everything
// in it), and every journalScanEvery otherwise.
func (c *cluster) republish(ctx context.Context) {
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
		c.failMu.Lock()
		failures := len(c.failed)
		c.failMu.Unlock()
		now := c.n.now()
		if !first && failures == 0 && now.Sub(lastScan) < journalScanEvery {
			continue
		}
		var due []store.JournalEntry
		present := map[string]bool{}
		err := c.n.store.Journal(func(e store.JournalEntry) error {
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
		c.failMu.Lock()
		if first {
			for id := range present {
				c.failed[id] = true // written before this start
			}
		}
		for id := range c.failed {
			if !present[id] {
				delete(c.failed, id) // in the log and trimmed
			}
		}
		c.failMu.Unlock()
		first, lastScan = false, now
		c.scans.Add(1)
		if !c.republishAll(ctx, due) {
			ids := make([]string, len(due))
			for i, e := range due {
				ids[i] = e.ID
			}
			c.publishFailed(ids...)
		}
	}
}

// republishAll publishes entries, oldest first per routing key: entries of
// one key one after another (the log keeps their order), up to
// republishers keys at a time, so that a journal that grew during a broker
// outage drains quickly. It stops at the first failure (the broker is
// away: the next sweep tries again), publishing nothing of that key after
// it, and reports whether every entry was published.
func (c *cluster) republishAll(ctx context.Context, entries []store.JournalEntry) bool {
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
				err := c.n.bus.Publish(pctx, e.Key, e.Body)
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
