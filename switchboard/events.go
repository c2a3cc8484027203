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
	Node   string `json:"node,omitempty"`   // the node that stored it
	Born   int64  `json:"born,omitempty"`   // Unix nanoseconds when the node received it, for latency
	Detail string `json:"detail,omitempty"` // sms.status: why a send failed
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
}
