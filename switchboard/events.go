package switchboard

import (
	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Routing keys of the RabbitMQ contract (DESIGN.md). Phone numbers appear as
// digits without '+'.
func keyIn(phone string) string       { return "sms.in." + protocol.Digits(phone) }
func keyOut(phone string) string      { return "sms.out." + protocol.Digits(phone) }
func keyStatus(phone string) string   { return "sms.status." + protocol.Digits(phone) }
func keyAssigned(agent string) string { return "conv.assigned." + agent }
func keyReleased(agent string) string { return "conv.released." + agent }
func keyPresence(agent string) string { return "agent.presence." + agent }

// messageEvent is the body of sms.in, sms.out and sms.status: the stored
// message object of the protocol, plus fields for the node's own use. Other
// services may read it as a plain message object.
type messageEvent struct {
	protocol.Message
	Node       string `json:"node,omitempty"`       // the node that accepted it
	Born       int64  `json:"born,omitempty"`       // Unix nanoseconds when the node received it, for latency
	Detail     string `json:"detail,omitempty"`     // sms.status: why a send failed
	Sid        string `json:"sid,omitempty"`        // sms.in: the provider's MessageSid
	To         string `json:"to,omitempty"`         // sms.in: our number
	Ref        string `json:"ref,omitempty"`        // sms.out: the agent's client ref
	ProviderID string `json:"providerId,omitempty"` // sms.status: the provider's id of the reply
	EventID    string `json:"eventId,omitempty"`    // the id of a status event (journal, applied-wait)
}

// assignmentEvent is the body of conv.assigned and conv.released.
type assignmentEvent struct {
	Agent  string `json:"agent"`
	Phone  string `json:"phone"`
	Reason string `json:"reason,omitempty"`
	At     int64  `json:"at"` // ms since the epoch
}

// presenceEvent is the body of agent.presence.
type presenceEvent struct {
	Agent    string `json:"agent"`
	Node     string `json:"node"`
	State    string `json:"state"` // connected, available, away, gone
	Capacity int    `json:"capacity"`
	Load     int    `json:"load"`
	At       int64  `json:"at"`
	// The event's id (dedupe) and the agent connection it
	// is about.
	ID      string `json:"id,omitempty"`
	Session string `json:"session,omitempty"`
}

// Presence states.
const (
	stateConnected = "connected"
	stateAvailable = "available"
	stateAway      = "away"
	stateGone      = "gone"
)

// routeEvent is the body of the internal route.* keys:
// requests that change routing, ordered by the shared log like everything
// else (route.release.<agent>, route.expire.<agent>, route.node.<node>,
// route.restore.<digits>).
type routeEvent struct {
	ID      string `json:"id"`
	Agent   string `json:"agent,omitempty"` // route.restore: the agent that held the conversation
	Phone   string `json:"phone,omitempty"`
	Session string `json:"session,omitempty"`
	Epoch   uint64 `json:"epoch,omitempty"`
	Node    string `json:"node,omitempty"`
	State   string `json:"state,omitempty"` // route.node: started, dead
	By      string `json:"by,omitempty"`    // route.node, route.restore: who published it
	At      int64  `json:"at"`              // ms since the epoch
	// route.restore: the conversation waited for an agent (after LastAgent).
	Waiting   bool   `json:"waiting,omitempty"`
	LastAgent string `json:"lastAgent,omitempty"`
	// route.transfer, route.assign, route.timeout (flow.go): the receiving
	// agent ("" = the waiting line), the note, the client's ref, and the
	// answer a timeout is about (message id, since when, ms).
	To    string `json:"to,omitempty"`
	Note  string `json:"note,omitempty"`
	Ref   string `json:"ref,omitempty"`
	Msg   string `json:"msg,omitempty"`
	Since int64  `json:"since,omitempty"`
}

func keyRelease(agent string) string { return "route.release." + agent }
func keyExpire(agent string) string  { return "route.expire." + agent }
func keyNode(node string) string     { return "route.node." + node }
func keyRestore(phone string) string { return "route.restore." + protocol.Digits(phone) }

// Issue 18 (flow.go).
func keyTransfer(agent string) string { return "route.transfer." + agent }
func keyAssign(agent string) string   { return "route.assign." + agent }
func keyTimeout(phone string) string  { return "route.timeout." + protocol.Digits(phone) }
func keyHeartbeat(node string) string {
	return "node.heartbeat." + node
}
