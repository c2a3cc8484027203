package switchboard

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms"
)

const (
	// Each send waits on the provider's API and on a synced status write,
	// so throughput needs many in flight.
	sendWorkers   = 32
	sendQueue     = 4096
	sweepInterval = 30 * time.Second
	// refillEvery is how often a dispatcher whose queue overflowed checks
	// whether it has room to take the rest from the outbox.
	refillEvery = 100 * time.Millisecond
)

// dispatcher sends stored replies through the SMS provider. Every reply is
// in the store's outbox from the moment it is stored until the provider has
// taken it (or it failed for good), so a restart resumes pending sends. A
// reply is claimed in memory while a worker handles it and re-checked in the
// store just before sending, so neither the bus, the periodic sweep nor a
// repeated ref can send it twice.
type dispatcher struct {
	n       *Node
	log     *slog.Logger
	queue   chan protocol.Message
	backoff sms.Backoff

	mu         sync.Mutex
	inflight   map[string]bool
	overflowed bool // replies were left in the outbox for lack of queue room
}

func newDispatcher(n *Node) *dispatcher {
	return &dispatcher{
		n:        n,
		log:      n.logBase.With("component", "outbound"),
		queue:    make(chan protocol.Message, sendQueue),
		backoff:  sms.DefaultBackoff,
		inflight: make(map[string]bool),
	}
}

// enqueue schedules m for sending unless it is already being handled. When
// the queue is full the reply stays in the outbox for the next sweep.
func (d *dispatcher) enqueue(m protocol.Message) {
	if m.Direction != protocol.Out || m.Status != protocol.StatusQueued {
		return
	}
	d.mu.Lock()
	if d.inflight[m.ID] {
		d.mu.Unlock()
		return
	}
	d.inflight[m.ID] = true
	d.mu.Unlock()
	select {
	case d.queue <- m:
	default:
		d.mu.Lock()
		delete(d.inflight, m.ID)
		d.overflowed = true
		d.mu.Unlock()
	}
}

func (d *dispatcher) release(id string) {
	d.mu.Lock()
	delete(d.inflight, id)
	d.mu.Unlock()
}

func (d *dispatcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < sendWorkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case m := <-d.queue:
					d.send(ctx, m)
					d.release(m.ID)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	d.sweep()
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	refill := time.NewTicker(refillEvery)
	defer refill.Stop()
	for {
		select {
		case <-t.C:
			d.sweep()
		case <-refill.C:
			d.mu.Lock()
			due := d.overflowed && len(d.queue) < sendQueue/2
			if due {
				d.overflowed = false
			}
			d.mu.Unlock()
			if due {
				d.sweep()
			}
		case <-ctx.Done():
			wg.Wait()
			return
		}
	}
}

// sweep enqueues every pending reply: at start (resume after a restart) and
// periodically (replies that missed the bus or a full queue).
func (d *dispatcher) sweep() {
	if c := d.n.cluster; c != nil {
		if !c.caughtUp.Load() {
			return // the log decides who sends what: wait until it is applied
		}
		pending, err := d.n.store.PendingReplies()
		if err != nil {
			d.log.Error("read outbox", "err", err)
			return
		}
		for _, p := range pending {
			if c.sends(p.Origin) {
				d.enqueue(p.Message)
			}
		}
		return
	}
	pending, err := d.n.store.Pending()
	if err != nil {
		d.log.Error("read outbox", "err", err)
		return
	}
	if len(pending) > 0 {
		d.log.Info("resuming pending replies", "count", len(pending))
	}
	for _, m := range pending {
		d.enqueue(m)
	}
}

func (d *dispatcher) statusCallback() string {
	if d.n.opts.PublicURL == "" {
		return ""
	}
	return strings.TrimSuffix(d.n.opts.PublicURL, "/") + "/sms/twilio/status"
}

func (d *dispatcher) send(ctx context.Context, m protocol.Message) {
	pending, err := d.n.store.IsPending(m.ID)
	if err != nil || !pending {
		return // sent already (or unknown): nothing to do
	}
	out := sms.Outgoing{ID: m.ID, To: m.Phone, From: d.n.opts.TwilioFrom, Body: m.Text, StatusCallback: d.statusCallback()}
	res, err := sms.SendWithRetry(ctx, d.n.sender, out, d.backoff, sms.Sleep, func(attempt int, err error, wait time.Duration) {
		d.n.metrics.outRetried.Inc()
		d.log.Warn("send failed; retrying", "id", m.ID, "attempt", attempt, "wait", wait, "err", err)
	})
	if ctx.Err() != nil {
		// Shutting down: the reply stays in the outbox and is resumed at start.
		return
	}
	// The store write below must not be lost to a cancelled request context.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	if err != nil {
		d.n.metrics.outFailed.Inc()
		d.log.Error("send failed for good", "id", m.ID, "err", err)
		if serr := d.n.setStatus(wctx, m.ID, protocol.StatusFailed, "", failureText(err)); serr != nil {
			d.log.Error("record failed send", "id", m.ID, "err", serr)
		}
		return
	}
	d.n.metrics.outSent.Inc()
	st := res.Status
	if !st.Valid() || st == protocol.StatusReceived {
		st = protocol.StatusQueued
	}
	if serr := d.n.setStatus(wctx, m.ID, st, res.ProviderID, ""); serr != nil {
		d.log.Error("record sent reply", "id", m.ID, "provider_id", res.ProviderID, "err", serr)
		return
	}
	d.n.applyEarly(wctx, m.ID, res.ProviderID)
}

func failureText(err error) string {
	var se *sms.SendError
	if errors.As(err, &se) && se.Message != "" {
		return se.Message
	}
	return "the SMS provider did not accept the reply"
}
