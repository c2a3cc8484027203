package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Frame types sent by the server to an agent.
const (
	TypeAlert    = "alert"
	TypeAssigned = "assigned"
	TypeUpdate   = "update"
	TypeStatus   = "status"
	TypeReleased = "released"
	TypeHistory  = "history" // also a request from the agent
	TypeStats    = "stats"
	TypeAck      = "ack"
	TypeResults  = "results" // answer to search
	TypeError    = "error"
	// TypeQueue says how many conversations wait for an agent and how long
	// the oldest has waited (Waiting, LongestWaitMs). The node sends it on
	// connect and when the waiting line changes, at most once a second.
	TypeQueue = "queue"
	// TypeSupervisor is the live view of the waiting line and every agent
	// (View), sent to supervisor sessions about once a second.
	TypeSupervisor = "supervisor"
	// TypeCanned carries every canned reply (Canned), on connect and
	// whenever one is put or deleted.
	TypeCanned = "canned"
	// TypeColleagues names the other agents a conversation can be
	// transferred to now: available, with free capacity (Agents, sorted),
	// on connect and when that changes, at most once a second.
	TypeColleagues = "colleagues"
)

// Frame types sent by an agent to the server.
const (
	TypeAvailable = "available"
	TypeAway      = "away"
	TypeResponse  = "response"
	TypeRelease   = "release"
	TypeTransfer  = "transfer" // give a conversation to another agent (To) or back to the line (To "")
	TypeAssign    = "assign"   // supervisor: give a waiting conversation to an agent (To)
	// TypeNote stores an internal note (Text, Ref) in a conversation the
	// agent holds: acked like a response, never sent as SMS.
	TypeNote = "note"
	// TypeContact names the customer of a conversation the agent holds
	// (Phone, Name).
	TypeContact = "contact"
	TypeSearch  = "search"
)

// Error codes carried by error frames.
const (
	CodeBadFrame     = "bad_frame"     // not a JSON object, or a field of the wrong type
	CodeUnknownType  = "unknown_type"  // the type is not part of the protocol
	CodeInvalid      = "invalid"       // a field is missing or out of range
	CodeTooLarge     = "too_large"     // the frame exceeds the read limit
	CodeNotAssigned  = "not_assigned"  // the conversation is not this agent's
	CodeAmbiguous    = "ambiguous"     // phone omitted with several conversations
	CodeNotFound     = "not_found"     // unknown message id
	CodeUnavailable  = "unavailable"   // the node cannot take the request now
	CodeInternal     = "internal"      // the node failed; the request may be retried
	CodeRateLimited  = "rate_limited"  // too many requests
	CodeSendFailed   = "send_failed"   // the SMS provider refused a reply
	CodeShuttingDown = "shutting_down" // the node is stopping
	CodeRefConflict  = "ref_conflict"  // the ref was already used for a reply with another phone or text
	CodeTokenExpired = "token_expired" // the agent's token expired: the session ends; reconnect with a fresh token
	CodeOptedOut     = "opted_out"     // the customer opted out (STOP); nothing is sent until they opt in
	CodeForbidden    = "forbidden"     // the session may not make this request (assign is a supervisor's)
)

// TopEntry is one row of the rolling top-N of viewed products.
type TopEntry struct {
	Product string `json:"product"`
	Title   string `json:"title,omitempty"`
	Count   int64  `json:"count"`
}

// Frame is one WebSocket frame in either direction. Only the fields that
// belong to Type are meaningful; MarshalJSON writes exactly those.
type Frame struct {
	Type string `json:"type"`

	Text   string    `json:"text,omitempty"`   // alert, error
	Phone  string    `json:"phone,omitempty"`  // most frames
	List   []Message `json:"list,omitempty"`   // assigned, update, history
	More   bool      `json:"more,omitempty"`   // history
	ID     string    `json:"id,omitempty"`     // status, ack
	Status Status    `json:"status,omitempty"` // status
	Reason string    `json:"reason,omitempty"` // released
	Ref    string    `json:"ref,omitempty"`    // ack, error, response, search, results
	Query  string    `json:"q,omitempty"`      // search, results
	Code   string    `json:"code,omitempty"`   // error

	// stats
	Product    string           `json:"product,omitempty"`
	Categories map[string]int64 `json:"categories,omitempty"`
	Top        []TopEntry       `json:"top,omitempty"`
	Viewed     []string         `json:"viewed,omitempty"` // products a linked customer viewed, newest first

	// queue
	Waiting       int   `json:"waiting,omitempty"`
	LongestWaitMs int64 `json:"longestWaitMs,omitempty"`

	// transfers and the supervisor (flow.go)
	To       string     `json:"to,omitempty"`       // transfer, assign
	Note     string     `json:"note,omitempty"`     // transfer
	Transfer *Transfer  `json:"transfer,omitempty"` // assigned by a transfer
	View     *QueueView `json:"view,omitempty"`     // supervisor
	Agents   []string   `json:"agents,omitempty"`   // colleagues
	// contact, canned (issue 18): see desk.go
	Contact *Contact      `json:"contact,omitempty"` // assigned, update
	Canned  []CannedReply `json:"canned,omitempty"`  // canned
	Name    string        `json:"name,omitempty"`    // contact (request)

	// agent requests
	Capacity int    `json:"capacity,omitempty"` // available
	Message  string `json:"message,omitempty"`  // response
	Before   string `json:"before,omitempty"`   // history, search
	Limit    int    `json:"limit,omitempty"`    // history, search
}

// MarshalJSON writes the fields of the frame's type and no others, so that
// every frame has a fixed shape (for example an empty history has "list":[]
// and "more":false).
func (f Frame) MarshalJSON() ([]byte, error) {
	list := f.List
	if list == nil {
		list = []Message{}
	}
	var v any
	switch f.Type {
	case TypeAlert:
		v = struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{f.Type, f.Text}
	case TypeAssigned, TypeUpdate:
		v = struct {
			Type     string    `json:"type"`
			Phone    string    `json:"phone"`
			List     []Message `json:"list"`
			Transfer *Transfer `json:"transfer,omitempty"`
			Contact  *Contact  `json:"contact,omitempty"`
		}{f.Type, f.Phone, list, f.Transfer, f.Contact}
	case TypeCanned:
		v = cannedFrame(f)
	case TypeStatus:
		v = struct {
			Type   string `json:"type"`
			Phone  string `json:"phone"`
			ID     string `json:"id"`
			Status Status `json:"status"`
			Text   string `json:"text,omitempty"`
		}{f.Type, f.Phone, f.ID, f.Status, f.Text}
	case TypeReleased:
		v = struct {
			Type   string `json:"type"`
			Phone  string `json:"phone"`
			Reason string `json:"reason"`
		}{f.Type, f.Phone, f.Reason}
	case TypeHistory:
		if f.Before != "" || f.Limit != 0 { // a request
			v = struct {
				Type   string `json:"type"`
				Phone  string `json:"phone"`
				Before string `json:"before,omitempty"`
				Limit  int    `json:"limit,omitempty"`
			}{f.Type, f.Phone, f.Before, f.Limit}
			break
		}
		v = struct {
			Type  string    `json:"type"`
			Phone string    `json:"phone"`
			List  []Message `json:"list"`
			More  bool      `json:"more"`
		}{f.Type, f.Phone, list, f.More}
	case TypeResults:
		v = struct {
			Type  string    `json:"type"`
			Ref   string    `json:"ref,omitempty"`
			Query string    `json:"q"`
			Phone string    `json:"phone,omitempty"`
			List  []Message `json:"list"`
			More  bool      `json:"more"`
		}{f.Type, f.Ref, f.Query, f.Phone, list, f.More}
	case TypeAck:
		v = struct {
			Type string `json:"type"`
			Ref  string `json:"ref"`
			ID   string `json:"id"`
		}{f.Type, f.Ref, f.ID}
	case TypeQueue:
		v = struct {
			Type          string `json:"type"`
			Waiting       int    `json:"waiting"`
			LongestWaitMs int64  `json:"longestWaitMs"`
		}{f.Type, f.Waiting, f.LongestWaitMs}
	case TypeColleagues:
		agents := f.Agents
		if agents == nil {
			agents = []string{}
		}
		v = struct {
			Type   string   `json:"type"`
			Agents []string `json:"agents"`
		}{f.Type, agents}
	case TypeError:
		v = struct {
			Type string `json:"type"`
			Code string `json:"code"`
			Text string `json:"text"`
			Ref  string `json:"ref,omitempty"`
		}{f.Type, f.Code, f.Text, f.Ref}
	default:
		type plain Frame // no MarshalJSON: stats and agent requests use omitempty
		v = plain(f)
	}
	return json.Marshal(v)
}

// Error is a refused frame: the code and text go back to the agent in an
// error frame.
type Error struct {
	Code string
	Text string
	Ref  string
}

func (e *Error) Error() string { return e.Code + ": " + e.Text }

// Frame returns the error frame that reports e.
func (e *Error) Frame() Frame { return Frame{Type: TypeError, Code: e.Code, Text: e.Text, Ref: e.Ref} }

// ErrorFrame builds an error frame.
func ErrorFrame(code, text, ref string) Frame {
	return Frame{Type: TypeError, Code: code, Text: text, Ref: ref}
}

func invalid(ref, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Text: fmt.Sprintf(format, args...), Ref: ref}
}

// DecodeRequest parses and validates one frame sent by an agent. A frame that
// is not valid JSON, has an unknown type or breaks a field rule returns an
// *Error whose Code says which.
func DecodeRequest(data []byte) (Frame, error) {
	var f Frame
	if !utf8.Valid(data) {
		return f, &Error{Code: CodeBadFrame, Text: "frame is not valid UTF-8"}
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return f, &Error{Code: CodeBadFrame, Text: "frame must be a JSON object"}
	}
	if err := json.Unmarshal(trimmed, &f); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Frame{}, &Error{Code: CodeBadFrame, Text: fmt.Sprintf("field %q has the wrong type", te.Field)}
		}
		return Frame{}, &Error{Code: CodeBadFrame, Text: "frame is not valid JSON"}
	}
	switch f.Type {
	case TypeAvailable:
		if f.Capacity < 0 || f.Capacity > MaxCapacity {
			return f, invalid("", "capacity must be between 0 and %d", MaxCapacity)
		}
	case TypeAway:
	case TypeResponse:
		if f.Ref == "" || len(f.Ref) > MaxRef {
			return f, invalid(truncate(f.Ref, MaxRef), "ref is required and at most %d bytes", MaxRef)
		}
		if len(bytes.TrimSpace([]byte(f.Message))) == 0 {
			return f, invalid(f.Ref, "message is empty")
		}
		if len(f.Message) > MaxText {
			return f, invalid(f.Ref, "message is longer than %d bytes", MaxText)
		}
		if f.Phone != "" {
			if _, err := NormalizeAddress(f.Phone); err != nil {
				return f, invalid(f.Ref, "phone: %v", err)
			}
		}
	case TypeRelease:
		if _, err := NormalizeAddress(f.Phone); err != nil {
			return f, invalid("", "phone: %v", err)
		}
	case TypeTransfer, TypeAssign:
		if err := validFlow(f); err != nil {
			return f, err
		}
	case TypeNote, TypeContact:
		if err := validateDesk(&f); err != nil {
			return f, err
		}
	case TypeHistory:
		if _, err := NormalizeAddress(f.Phone); err != nil {
			return f, invalid("", "phone: %v", err)
		}
		if f.Limit < 0 || f.Limit > MaxHistory {
			return f, invalid("", "limit must be between 1 and %d", MaxHistory)
		}
		if f.Limit == 0 {
			f.Limit = 50
		}
		if len(f.Before) > 64 {
			return f, invalid("", "before is not a message id")
		}
	case TypeSearch:
		if err := validateSearch(&f); err != nil {
			return f, err
		}
	case "":
		return f, &Error{Code: CodeBadFrame, Text: "frame has no type"}
	default:
		return f, &Error{Code: CodeUnknownType, Text: fmt.Sprintf("unknown frame type %q", truncate(f.Type, 64))}
	}
	return f, nil
}

// DecodeEvent parses one frame sent by the server. It is lenient: clients
// must tolerate frame types and fields added later.
func DecodeEvent(data []byte) (Frame, error) {
	var f Frame
	if err := json.Unmarshal(data, &f); err != nil {
		return Frame{}, fmt.Errorf("protocol: decode frame: %w", err)
	}
	if f.Type == "" {
		return Frame{}, errors.New("protocol: decode frame: no type")
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
