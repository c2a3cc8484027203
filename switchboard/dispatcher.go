package switchboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard/switchboard/switchboard/internal/pause"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms"
	"github.com/switchboard/switchboard/switchboard/sms/twilio"
	"github.com/switchboard/switchboard/switchboard/store"
)

const (
	// Each send waits on the provider's API and on a synced status write,
	// so throughput needs many in flight.
	sendWorkers   = 32
	sendQueue     = 4096
	sweepInterval = 30 * time.Second
	// providerSkew is how far the provider's clock may be behind ours: a
	// lookup for a reply stored at t covers messages created from
	// t - providerSkew.
	providerSkew = 5 * time.Minute
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
//
// A reply that may have reached the provider already is looked up there
// before it is sent (sms.Deliver): one stored before this process started
// (it may have been sent just before a crash), one accepted by another node
// (sent by that node before it died), and, in a cluster, one of this node's
// own stored before it came back from being declared dead (its adopter may
// have sent it). Such "uncertain" replies also wait until any attempt their
// previous sender can still have had under way is over (hold).
type dispatcher struct {
	dispatcherDeps
	log     *slog.Logger
	queue   chan outgoing
	backoff sms.Backoff

	mu         sync.Mutex
	inflight   map[string]bool
	claimed    map[string]string // provider id → reply, while a found message is being recorded
	overflowed bool              // replies were left in the outbox for lack of queue room
	// certainFrom: this node's own replies stored from then on were
	// never in anyone else's hands (process start; cluster: its return
	// after being declared dead).
	certainFrom time.Time
	// holdUntil: uncertain replies are not looked up or sent before then.
	holdUntil time.Time
}

// outgoing is a reply to send and the node that accepted it ("" in single
// node mode: this one).
type outgoing struct {
	msg    protocol.Message
	origin string
}

// dispatcherDeps is what the dispatcher takes from the node. No *Node:
// the dispatcher sees only these.
type dispatcherDeps struct {
	sender sms.Sender
	store  outboxStore
	role   sendRole
	now    func() time.Time
	// after runs f in the background once wait has passed, unless the
	// node stops first.
	after        func(wait time.Duration, f func())
	metrics      *nodeMetrics
	statusURL    string // the status callback asked of the provider; "" none
	smsFrom      string // TWILIO_FROM
	whatsAppFrom string // TWILIO_WHATSAPP_FROM
	// setStatus accepts a delivery status (a log event, http.go);
	// applyEarly applies a status callback that came before the send's
	// answer (earlystatus.go).
	setStatus  func(ctx context.Context, id string, st protocol.Status, providerID, detail string) error
	applyEarly func(ctx context.Context, id, providerID string)
}

// outboxStore is the store as the dispatcher reads it.
type outboxStore interface {
	PendingReplies() ([]store.PendingReply, error)
	IsPending(id string) (bool, error)
	MessageByProviderID(providerID string) (protocol.Message, error)
	OptedOut(phone string) (bool, error)
}

// sendRole is what the log says of this node as a sender (the cluster,
// membership.go).
type sendRole interface {
	// isCaughtUp: the log is applied up to its end, so the outbox is as
	// the log says.
	isCaughtUp() bool
	// sends: this node sends the replies origin accepted.
	sends(origin string) bool
	// hearsBroker: this node heard its own heartbeat recently (always on
	// the local log).
	hearsBroker(now time.Time) bool
	// self is this node's id.
	self() string
}

func newDispatcher(deps dispatcherDeps, log *slog.Logger) *dispatcher {
	return &dispatcher{
		dispatcherDeps: deps,
		log:            log,
		queue:          make(chan outgoing, sendQueue),
		backoff:        sms.DefaultBackoff,
		inflight:       make(map[string]bool),
		claimed:        make(map[string]string),
		certainFrom:    deps.now(),
	}
}

// attemptTimeout is how long one request to the provider can last: an
// attempt started before a node lost its right to send can still reach
// the provider that long after. Senders that do not say use Twilio's.
func (d *dispatcher) attemptTimeout() time.Duration {
	if t, ok := d.sender.(interface{ AttemptTimeout() time.Duration }); ok {
		return t.AttemptTimeout()
	}
	return twilio.DefaultTimeout
}

// handOver takes on replies another sender may still have had under way
// (a dead node's; or, when mine is set, this node's own stored until now,
// which an adopter had while this node was thought dead): uncertain
// replies wait until that sender's last attempt is over, and then the
// outbox is swept. It returns the wait.
func (d *dispatcher) handOver(mine bool) time.Duration {
	wait := d.attemptTimeout() + leaseFor
	now := d.now()
	d.mu.Lock()
	if until := now.Add(wait); until.After(d.holdUntil) {
		d.holdUntil = until
	}
	if mine {
		d.certainFrom = now
	}
	d.mu.Unlock()
	d.after(wait, d.sweep)
	return wait
}

// uncertain reports whether m (accepted by origin) may have reached the
// provider before this node took it on.
func (d *dispatcher) uncertain(m protocol.Message, origin string) bool {
	if origin != "" && origin != d.role.self() {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return m.Received < d.certainFrom.UnixMilli()
}

// claim takes the provider's message sid for reply id, unless it already is
// another reply's (the same text sent twice to one customer).
func (d *dispatcher) claim(id string, found sms.Sent) bool {
	if m, err := d.store.MessageByProviderID(found.ProviderID); err == nil && m.ID != id {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if other, ok := d.claimed[found.ProviderID]; ok && other != id {
		return false
	}
	d.claimed[found.ProviderID] = id
	return true
}

// enqueue schedules m, accepted by origin, for sending unless it is
// already being handled. When the queue is full the reply stays in the
// outbox for the next sweep.
func (d *dispatcher) enqueue(m protocol.Message, origin string) {
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
	case d.queue <- outgoing{m, origin}:
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
				case o := <-d.queue:
					d.send(ctx, o.msg, o.origin)
					d.release(o.msg.ID)
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
	if !d.role.isCaughtUp() {
		return // the log decides who sends what: wait until it is applied
	}
	pending, err := d.store.PendingReplies()
	if err != nil {
		d.log.Error("read outbox", "err", err)
		return
	}
	n := 0
	for _, p := range pending {
		if d.role.sends(p.Origin) {
			d.enqueue(p.Message, p.Origin)
			n++
		}
	}
	if n > 0 {
		d.log.Info("resuming pending replies", "count", n)
	}
}

// errNotHere stops a send that another node is now responsible for.
var errNotHere = errors.New("another node sends this reply now")

func (d *dispatcher) send(ctx context.Context, m protocol.Message, origin string) {
	pending, err := d.store.IsPending(m.ID)
	if err != nil || !pending {
		return // sent already (or unknown): nothing to do
	}
	if d.optedOut(ctx, m) {
		return
	}
	uncertain := d.uncertain(m, origin)
	out := sms.Outgoing{ID: m.ID, To: m.Phone, From: d.from(m.Phone), Body: m.Text, StatusCallback: d.statusURL}
	res, found, err := sms.Deliver(ctx, d.sender, out, sms.Plan{
		Backoff:   d.backoff,
		Uncertain: uncertain,
		Since:     time.UnixMilli(m.Received).Add(-providerSkew),
		Claim:     func(f sms.Sent) bool { return d.claim(m.ID, f) },
		Ready:     func(ctx context.Context) error { return d.ready(ctx, origin, uncertain) },
		OnRetry: func(attempt int, err error, wait time.Duration) {
			d.metrics.outRetried.Inc()
			d.log.Warn("send failed; retrying", "id", m.ID, "attempt", attempt, "wait", wait, "err", err)
		},
	})
	if found {
		defer func() {
			d.mu.Lock()
			delete(d.claimed, res.ProviderID)
			d.mu.Unlock()
		}()
	}
	if ctx.Err() != nil || errors.Is(err, errNotHere) {
		// Shutting down: the reply stays in the outbox and is resumed at
		// start. Or it is another node's to send now.
		return
	}
	// The store write below must not be lost to a cancelled request context.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	if err != nil {
		d.metrics.outFailed.Inc()
		d.log.Error("send failed for good", "id", m.ID, "err", err)
		if serr := d.setStatus(wctx, m.ID, protocol.StatusFailed, "", failureText(err)); serr != nil {
			d.log.Error("record failed send", "id", m.ID, "err", serr)
		}
		return
	}
	if found {
		d.log.Warn("reply found at the SMS provider, sent before; not sending it again", "id", m.ID, "provider_id", res.ProviderID)
	} else {
		d.metrics.outSent.Inc()
	}
	st := res.Status
	if !st.Valid() || st == protocol.StatusReceived {
		st = protocol.StatusQueued
	}
	if serr := d.setStatus(wctx, m.ID, st, res.ProviderID, ""); serr != nil {
		d.log.Error("record sent reply", "id", m.ID, "provider_id", res.ProviderID, "err", serr)
		return
	}
	d.applyEarly(wctx, m.ID, res.ProviderID)
}

// ready is asked before each lookup and attempt of a reply accepted by
// origin. Uncertain replies wait out the hand-over (holdUntil). In a
// cluster the node must still be the reply's sender (else errNotHere) and
// must hear the broker: a node cut off from it is declared dead by the
// others after deadAfter, and its adopter sends its replies; so a node
// that has not heard its own heartbeat for leaseFor starts no attempt
// until it hears it again.
func (d *dispatcher) ready(ctx context.Context, origin string, uncertain bool) error {
	for {
		wait := time.Duration(0)
		if uncertain {
			d.mu.Lock()
			wait = d.holdUntil.Sub(d.now())
			d.mu.Unlock()
		}
		if !d.role.sends(origin) {
			return errNotHere
		}
		if !d.role.hearsBroker(d.now()) {
			wait = max(wait, heartbeatEvery/4)
		}
		if wait <= 0 {
			return nil
		}
		if !pause.For(ctx, min(wait, heartbeatEvery)) {
			return ctx.Err()
		}
	}
}

// failureText is the status detail of a failed send. A provider's error
// code comes first ("provider error 21610: ..."), as in status callbacks:
// applying the status reads it (store.ErrorCodeOf).
func failureText(err error) string {
	var se *sms.SendError
	if errors.As(err, &se) && se.Code != 0 {
		if se.Code == 21610 {
			return fmt.Sprintf("provider error %d: %s: the customer opted out (STOP); nothing is sent until they text START", se.Code, protocol.CodeOptedOut)
		}
		return fmt.Sprintf("provider error %d: %s", se.Code, se.Message)
	}
	if errors.As(err, &se) && se.Message != "" {
		return se.Message
	}
	return "the SMS provider did not accept the reply"
}

// from is the sender of a reply on the conversation's channel: TWILIO_FROM
// for SMS, TWILIO_WHATSAPP_FROM (else TWILIO_FROM) as whatsapp:+E164 for
// WhatsApp. Empty (SMS without TWILIO_FROM) is the provider's default.
func (d *dispatcher) from(addr string) string {
	if protocol.Channel(addr) != protocol.ChannelWhatsApp {
		return d.smsFrom
	}
	from := d.whatsAppFrom
	if from == "" {
		from = d.smsFrom
	}
	return protocol.OnChannel(protocol.ChannelWhatsApp, from)
}

// optedOut fails a reply to a customer who opted out after it was accepted
// (a STOP applied between the reply and its send), before the provider:
// Twilio would refuse it with 21610 anyway. It reports whether it did.
func (d *dispatcher) optedOut(ctx context.Context, m protocol.Message) bool {
	out, err := d.store.OptedOut(m.Phone)
	if err != nil || !out {
		return false
	}
	d.log.Info("reply not sent: the customer opted out", "id", m.ID)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	if err := d.setStatus(wctx, m.ID, protocol.StatusFailed, "", optedOutText); err != nil {
		d.log.Error("record reply refused for opt-out", "id", m.ID, "err", err)
	}
	return true
}

// optedOutText is the detail of a reply refused because the customer
// opted out.
const optedOutText = protocol.CodeOptedOut + ": the customer opted out (STOP); nothing is sent until they text START"
