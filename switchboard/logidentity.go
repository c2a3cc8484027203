package switchboard

// This file holds log identity and replacement: a log is known by its first entry; a replaced log is adopted at start (adoptLog) and makes a running node fail (watchLog).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard/switchboard/switchboard/route"
)

// logHead identifies a log: its first entry's offset and a digest of that
// entry. A stream that was deleted and declared again (by hand, or by a
// broker that lost its data) starts over at offset 0 with other entries;
// offsets alone would make the node skip them as already applied.
type logHead struct {
	Offset int64  `json:"offset"`
	Sum    string `json:"sum"` // hex SHA-256 (first 16 bytes) of the entry's key and body
}

func headOf(offset int64, key string, body []byte) logHead {
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write(body)
	return logHead{Offset: offset, Sum: hex.EncodeToString(h.Sum(nil)[:16])}
}

// replacedBy reports whether a log whose first entry is now cur cannot be
// the log whose first entry was h. A first entry further on is the same
// log with its oldest entries removed (a retention policy: the apply loop
// reports a hole if this node had not applied them).
func (h logHead) replacedBy(cur logHead) bool {
	return cur.Offset < h.Offset || (cur.Offset == h.Offset && cur.Sum != h.Sum)
}

// adoptLog makes a replaced log this node's log (start). The node's routing
// state comes from the old log, which other nodes may have applied further
// or less far: applied on top of it, the new log could make this node
// decide unlike them. So the node first publishes what it knew into the
// new log, a route.restore for each conversation an agent held or that
// waited (waiting ones in their order), then forgets its routing state and
// replays the new log from its start, at the next log generation (its
// stored messages are fresh again there, see store.LogPos). Every node
// does the same, and each conversation takes the first restore of it that
// the new log has not decided otherwise (route.Engine.Adopt): all nodes
// end with the same routing state, and agents keep their conversations.
//
// The deaths of nodes whose replies this node sent are published again
// too, so that it goes on sending them.
//
// A crash before the reset is saved adopts again at the next start
// (restores repeat, harmlessly); after it, the node replays the new log.
func (c *cluster) adoptLog(ctx context.Context, cur logHead) error {
	var restores []routeEvent
	err := c.route(ctx, func() {
		e := c.router.engine
		at := c.now().UnixMilli()
		for _, phone := range e.Waiting() {
			conv := e.Conversation(phone)
			restores = append(restores, routeEvent{Phone: phone, Waiting: true, LastAgent: conv.LastAgent, By: c.node, At: at})
		}
		for _, a := range e.SnapshotAgents() {
			for _, phone := range e.Conversations(a.Name) {
				restores = append(restores, routeEvent{Phone: phone, Agent: a.Name, By: c.node, At: at})
			}
		}
	})
	if err != nil {
		return err
	}
	for _, ev := range restores {
		ev.ID = c.store.NewID()
		if err := c.publish(ctx, keyRestore(ev.Phone), ev); err != nil {
			return fmt.Errorf("restore routing into the new log: %w", err)
		}
	}
	// The dead nodes whose replies this node sends: the new log must say
	// so too, or nobody sends the replies they left pending.
	var adopted []string
	c.adoptMu.Lock()
	for node, ok := range c.adopted {
		if ok {
			adopted = append(adopted, node)
		}
	}
	c.adoptMu.Unlock()
	slices.Sort(adopted)
	for _, node := range adopted {
		ev := routeEvent{ID: c.store.NewID(), Node: node, State: "dead", By: c.node, At: c.now().UnixMilli()}
		if err := c.publish(ctx, keyNode(node), ev); err != nil {
			return fmt.Errorf("restore a node death into the new log: %w", err)
		}
	}
	err = c.route(ctx, func() {
		c.router.engine = route.New(c.capacity)
		c.current = map[string]string{}
		c.recent, c.recentSet = nil, map[string]bool{}
		c.dead = map[string]string{}
		c.dirty = map[string]bool{}
	})
	if err != nil {
		return err
	}
	c.adoptMu.Lock()
	c.adopted = map[string]bool{}
	c.adoptMu.Unlock()
	c.offset, c.queued = -1, -1
	c.gen++
	c.head = cur
	blob, _ := json.Marshal(checkpoint{Offset: -1, Current: c.current, Dead: c.dead, Head: &cur, Gen: c.gen})
	if err := c.store.ResetRouting(ctx, blob); err != nil {
		return err
	}
	c.log.Info("cluster: routing restored into the new log", "conversations", len(restores), "generation", c.gen)
	return nil
}

// watchLog checks every checkEvery that the log still starts with the
// entry it started with. A broker that lost its data (or an operator who
// deleted the log) gives the nodes a new log whose offsets start over: a
// running node would wait for offsets it has already applied and skip
// the new entries. The node then fails (Node.Failed): restarted, it
// replays the new log (start).
//
// It also checks as soon as its own heartbeats come back after an outage
// (recheck). While the log is empty (a new one) Head waits for its first
// entry, and after a failed read (the broker away) the next one follows
// within a second: so after a reconnect to a broker that lost the log, the
// node notices at the new log's first entry, before the new log can reach
// the offsets its subscription waits for.
func (c *cluster) watchLog(ctx context.Context) {
	retry := min(time.Second, c.checkEvery)
	wait := c.checkEvery
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-c.recheck:
		}
		hctx, cancel := context.WithTimeout(ctx, c.checkEvery)
		d, err := c.elog.Head(hctx)
		cancel()
		if err != nil {
			// The broker is away or still starting, the log is empty, or
			// it is missing: this node's consumer declares it again (a new
			// log), whose first entry the next read finds.
			wait = retry
			continue
		}
		wait = c.checkEvery
		cur := headOf(d.Offset, d.Key, d.Body)
		if !c.head.replacedBy(cur) {
			continue
		}
		err = fmt.Errorf("cluster log replaced: its first entry changed (offset %d, %s → offset %d, %s); the broker lost it or it was deleted, and this node cannot follow the new log while running: restart it to replay the new log (docs/architecture.md, failure cases)",
			c.head.Offset, c.head.Sum, cur.Offset, cur.Sum)
		c.setFault(err)
		c.fail(err)
		return
	}
}
