package agent

import (
	"slices"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/transform"
)

// entry is one message of a timeline: the annotated message plus what only
// the client knows about its own replies.
type entry struct {
	transform.Annotated
	ref     string // client reference of a reply sent from this client
	pending bool   // sent, not yet acknowledged by the node
	failed  string // why the reply failed; empty when it did not
	// reason is the node's word on a failed delivery (a status frame's
	// text). Such a reply is stored: resending its ref would change
	// nothing, so it is not offered for retry.
	reason string
}

// state returns the delivery word shown for a reply.
func (e *entry) state() string {
	switch {
	case e.failed != "":
		return "failed"
	case e.pending:
		return "sending"
	case e.Message.Status == protocol.StatusReceived || e.Message.Status == "":
		return "queued"
	}
	return string(e.Message.Status)
}

// conversation is one customer's thread as the client knows it. Messages are
// kept oldest first and at most once per message id: merge is the only way
// in, which is what makes resynchronisation after a reconnect show nothing
// twice.
type conversation struct {
	phone   string
	msgs    []*entry
	ids     map[string]*entry
	unread  int
	fresh   bool // arrived and not looked at yet
	more    bool // the node may hold older messages
	loading bool // a history request is in flight
	offset  int  // timeline scroll: messages hidden below the view
	// newBelow counts the messages that arrived below the view while it
	// was scrolled back (at most offset).
	newBelow int
	// refusedAt is when the node last refused a reply because the
	// customer opted out (zero: never); see optedOut.
	refusedAt time.Time
	transfer string // who transferred it here, with their note (transfer.go)
}

func newConversation(phone string) *conversation {
	return &conversation{phone: phone, ids: make(map[string]*entry), more: true}
}

// merge adds the messages not seen yet, advances delivery statuses of the
// ones already known, and returns how many inbound messages were new.
func (c *conversation) merge(an *transform.Analyzer, list []protocol.Message) (newIn int) {
	var add []protocol.Message
	for _, m := range list {
		if m.ID == "" {
			continue
		}
		if e, ok := c.ids[m.ID]; ok {
			if e.Message.Status.Advances(m.Status) {
				e.Message.Status = m.Status
			}
			continue
		}
		if m.Direction == protocol.Out && c.adopt(m) {
			continue
		}
		add = append(add, m)
	}
	if len(add) == 0 {
		return 0
	}
	// A timeline scrolled back stays on the message at the bottom of the
	// view; what arrives after it is counted, not scrolled in.
	var anchor *entry
	if c.offset > 0 && c.offset < len(c.msgs) {
		anchor = c.msgs[len(c.msgs)-1-c.offset]
		defer func() {
			if i := slices.Index(c.msgs, anchor); i >= 0 {
				off := len(c.msgs) - 1 - i
				c.newBelow += off - c.offset
				c.offset = off
			}
		}()
	}
	last := time.Time{}
	if n := len(c.msgs); n > 0 {
		last = c.msgs[n-1].Time
	}
	sorted := true
	for _, a := range transform.Annotations(an, add) {
		e := &entry{Annotated: a}
		c.ids[a.Message.ID] = e
		if a.Time.Before(last) {
			sorted = false
		}
		last = a.Time
		c.msgs = append(c.msgs, e)
		if a.Message.Direction == protocol.In {
			newIn++
		}
	}
	if !sorted {
		// History arrives older than what is shown; a stable sort by time
		// keeps messages of the same millisecond in arrival order.
		slices.SortStableFunc(c.msgs, func(a, b *entry) int { return a.Time.Compare(b.Time) })
	}
	return newIn
}

// adopt gives a stored reply's id to the local reply it came from, when the
// node's update overtakes the ack or when a reply whose ack was lost in a
// disconnect turns out to be stored after all.
func (c *conversation) adopt(m protocol.Message) bool {
	for _, e := range c.msgs {
		if e.ref != "" && e.Message.ID == "" && e.Message.Text == m.Text {
			e.Message.ID = m.ID
			e.Message.Status = m.Status
			e.Message.Received = m.Received
			e.pending, e.failed = false, ""
			c.ids[m.ID] = e
			return true
		}
	}
	return false
}

// ack records that the reply with ref was stored as id.
func (c *conversation) ack(ref, id string) bool {
	e := c.byRef(ref)
	if e == nil {
		return false
	}
	if other, ok := c.ids[id]; ok && other != e {
		// The update carrying the stored reply came first: keep that one.
		c.msgs = slices.DeleteFunc(c.msgs, func(x *entry) bool { return x == e })
		other.ref = ref
		return true
	}
	e.Message.ID = id
	e.pending, e.failed = false, ""
	if e.Message.Status == "" {
		e.Message.Status = protocol.StatusQueued
	}
	c.ids[id] = e
	return true
}

func (c *conversation) byRef(ref string) *entry {
	for i := len(c.msgs) - 1; i >= 0; i-- {
		if c.msgs[i].ref == ref {
			return c.msgs[i]
		}
	}
	return nil
}

// lastFailed is the newest reply that failed, the one the retry key resends.
func (c *conversation) lastFailed() *entry {
	for i := len(c.msgs) - 1; i >= 0; i-- {
		if c.msgs[i].failed != "" {
			return c.msgs[i]
		}
	}
	return nil
}

// oldestID is the id to ask history before.
func (c *conversation) oldestID() string {
	for _, e := range c.msgs {
		if e.Message.ID != "" {
			return e.Message.ID
		}
	}
	return ""
}

func (c *conversation) last() *entry {
	if len(c.msgs) == 0 {
		return nil
	}
	return c.msgs[len(c.msgs)-1]
}

// lastMark is the sentiment of the newest customer message.
func (c *conversation) lastMark() transform.Mark {
	for i := len(c.msgs) - 1; i >= 0; i-- {
		if c.msgs[i].Message.Direction == protocol.In {
			return c.msgs[i].Sentiment.Mark
		}
	}
	return transform.MarkNone
}
