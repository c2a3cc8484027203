package protocol

// Transfers and the supervisor's view (issue 18).

// MaxNote is the longest transfer note accepted, in bytes.
const MaxNote = 1000

// CloseReplaced is the reason of the WebSocket close (code 1008, policy
// violation) with which a node ends an agent's connection when the same
// agent signs in elsewhere. A client must not reconnect on it by itself:
// the two connections would close each other in turn forever.
const CloseReplaced = "replaced by a newer session"

// Transfer says, in an assigned frame, that the conversation was handed
// over by another agent, with the note it left.
type Transfer struct {
	From string `json:"from"`
	Note string `json:"note"`
}

// QueueView is the supervisor's view of the whole cluster: GET /queue and
// the supervisor frame.
type QueueView struct {
	Waiting []QueueWaiter `json:"waiting"`
	Agents  []QueueAgent  `json:"agents"`
}

// QueueWaiter is one conversation waiting for an agent; Position 1 is
// the next to be offered.
type QueueWaiter struct {
	Phone     string `json:"phone"`
	WaitingMs int64  `json:"waitingMs"`
	Position  int    `json:"position"`
}

// Agent states in the supervisor's view.
const (
	AgentAvailable = "available" // connected and taking conversations
	AgentAway      = "away"      // connected, taking no new conversations
	AgentOffline   = "offline"   // disconnected, in its grace period
)

// QueueAgent is one agent: its state, capacity, how many conversations it
// holds (Load) and which (Conversations, by phone, sorted), and the node
// hosting its connection.
type QueueAgent struct {
	Name          string   `json:"name"`
	State         string   `json:"state"`
	Capacity      int      `json:"capacity"`
	Load          int      `json:"load"`
	Node          string   `json:"node"`
	Conversations []string `json:"conversations"`
}

// validFlow checks a transfer or assign request.
func validFlow(f Frame) *Error {
	ref := truncate(f.Ref, MaxRef)
	if len(f.Ref) > MaxRef {
		return invalid(ref, "ref is at most %d bytes", MaxRef)
	}
	if _, err := NormalizeAddress(f.Phone); err != nil {
		return invalid(ref, "phone: %v", err)
	}
	if f.To != "" || f.Type == TypeAssign {
		if err := ValidAgentName(f.To); err != nil {
			return invalid(ref, "to: %v", err)
		}
	}
	if len(f.Note) > MaxNote {
		return invalid(ref, "note is longer than %d bytes", MaxNote)
	}
	if f.Type == TypeAssign && f.Note != "" {
		return invalid(ref, "assign takes no note")
	}
	return nil
}
