package switchboard

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// earlyStatuses holds status callbacks that arrived before the node recorded
// the provider id of the reply they are about: Twilio can call back before
// its API answer has been processed here. They are applied as soon as the
// dispatcher records the provider id, and forgotten after earlyTTL.
type earlyStatuses struct {
	mu      sync.Mutex
	pending map[string][]earlyStatus // by provider id
}

type earlyStatus struct {
	status protocol.Status
	detail string
	at     time.Time
}

const earlyTTL = 10 * time.Minute

// hold records an early callback. lookup runs under the lock: it reports
// whether the provider id is known after all (then nothing is held), which
// closes the race with take.
func (e *earlyStatuses) hold(providerID string, st protocol.Status, detail string, now time.Time, lookup func() bool) (held bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if lookup() {
		return false
	}
	if e.pending == nil {
		e.pending = make(map[string][]earlyStatus)
	}
	for id, list := range e.pending {
		if now.Sub(list[len(list)-1].at) > earlyTTL {
			delete(e.pending, id)
		}
	}
	e.pending[providerID] = append(e.pending[providerID], earlyStatus{st, detail, now})
	return true
}

// has reports whether callbacks are held for providerID.
func (e *earlyStatuses) has(providerID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pending[providerID]) > 0
}

// take returns and forgets the callbacks held for providerID. Call it after
// the provider id is durably recorded.
func (e *earlyStatuses) take(providerID string) []earlyStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	list := e.pending[providerID]
	delete(e.pending, providerID)
	return list
}

// applyEarly applies callbacks that arrived before providerID was recorded
// for reply id.
func (n *Node) applyEarly(ctx context.Context, id, providerID string) {
	for _, es := range n.early.take(providerID) {
		if err := n.setStatus(ctx, id, es.status, "", es.detail); err != nil {
			n.log.Error("apply early status callback", "id", id, "status", es.status, "err", err)
		}
	}
}
