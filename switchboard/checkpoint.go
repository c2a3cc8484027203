package switchboard

// This file holds checkpoints and restore: routing state saved with the log offset it reflects.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/switchboard/switchboard/switchboard/route"
	"github.com/switchboard/switchboard/switchboard/store"
)

// checkpoint is the routing state saved with the log offset it reflects.
type checkpoint struct {
	Offset  int64                 `json:"offset"` // last applied; -1 = none
	Agents  []route.AgentSnapshot `json:"agents"`
	Current map[string]string     `json:"current"` // agent → session of its latest connection
	Recent  []string              `json:"recent"`  // ids of the last route/presence events applied
	Dead    map[string]string     `json:"dead"`    // dead node → node that adopted its replies
	Head    *logHead              `json:"head,omitempty"`
	Gen     int64                 `json:"gen,omitempty"`   // replaced logs adopted (store.LogPos)
	Flows   []route.FlowSnapshot  `json:"flows,omitempty"` // transfers and answers owed (flow.go)
}

// saveNow has the applier save a checkpoint of what it has applied, if
// anything since the last one, and waits for it: a node that stops
// gracefully then restarts exactly where it stopped, and should the broker
// lose the log meanwhile, its restores (adoptLog) are complete.
func (c *cluster) saveNow(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	done := make(chan struct{})
	select {
	case c.flush <- done:
	case <-ctx.Done():
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// checkpoint saves the routing state with the offset it reflects, and
// forgets journal entries the log now has. It is the apply loop's synced
// write: the store writes of the events before it (made without their own
// fsync, see store.WithoutSync) are durable once it is, because LevelDB's
// journal is one sequential file. After a crash the node resumes after the
// checkpoint's offset and re-applies, idempotently, whatever came later.
func (c *cluster) checkpoint(ctx context.Context) {
	var blob []byte
	var convs []store.ConvState
	c.router.call(ctx, func() {
		cp := checkpoint{Offset: c.offset, Agents: c.router.engine.SnapshotAgents(), Current: c.current, Recent: c.recent, Dead: c.dead, Head: &c.head, Gen: c.gen, Flows: c.router.engine.SnapshotFlows()}
		for phone := range c.dirty {
			s := c.router.engine.Conversation(phone)
			convs = append(convs, store.ConvState{Phone: s.Phone, Agent: s.Agent, LastAgent: s.LastAgent, Waiting: s.Waiting, WaitSeq: s.WaitSeq})
		}
		blob, _ = json.Marshal(cp) // marshalled here: the maps are the router's
	})
	if blob == nil {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.store.SaveCheckpoint(wctx, convs, blob); err != nil {
		c.log.Error("checkpoint", "err", err)
		return
	}
	c.dirty = map[string]bool{}
	c.maybeSnapshot(ctx, blob)
	c.accept.trim(wctx)
	if err := c.elog.Trim(wctx, c.offset+1); err != nil {
		c.log.Warn("trim the log", "err", err)
	}
	c.sinceCheck = 0
	c.lastCheck = c.now()
}

// restoreCheckpoint makes cp and convs (the store's routing state) the
// node's apply and routing state. It runs before the router does
// (newCluster) or on it (loadSnapshot, on a fresh engine).
func (c *cluster) restoreCheckpoint(cp checkpoint, convs []route.Conversation) {
	c.offset = cp.Offset
	c.queued = cp.Offset
	if cp.Current != nil {
		c.current = cp.Current
	}
	for _, id := range cp.Recent {
		c.remember(id)
	}
	if cp.Dead != nil {
		c.dead = cp.Dead
	}
	if cp.Head != nil {
		c.head = *cp.Head
	}
	c.gen = cp.Gen
	c.adoptMu.Lock()
	for dead, by := range c.dead {
		if by == c.node {
			c.adopted[dead] = true
		}
	}
	c.adoptMu.Unlock()
	c.router.engine.Restore(convs, time.Unix(0, 0))
	c.router.engine.RestoreAgents(cp.Agents)
	c.router.engine.RestoreFlows(cp.Flows)
}

// storedConvs is the routing state of every conversation in st.
func storedConvs(st *store.Store) ([]route.Conversation, error) {
	var convs []route.Conversation
	err := st.Conversations(func(s store.ConvState) error {
		convs = append(convs, route.Conversation{Phone: s.Phone, Agent: s.Agent, LastAgent: s.LastAgent, Waiting: s.Waiting, WaitSeq: s.WaitSeq})
		return nil
	})
	return convs, err
}
