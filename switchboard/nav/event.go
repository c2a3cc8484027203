package nav

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// TypeProduct is the event type the counters count; other types are
// accepted and ignored.
const TypeProduct = "PRODUCT"

// Limits on event fields.
const (
	MaxUserLen = 128 // bytes of a user id
	MaxIDLen   = 64  // bytes of a product id
	MaxTypeLen = 32  // bytes of an event type
)

// Event is one navigation event: user viewed product. ID and Node are set by
// the node that ingests it (a shop publishing on nav.view.* may leave them
// empty) and travel on the bus.
type Event struct {
	ID      string `json:"id,omitempty"`   // assigned by the ingesting node; dedupes redeliveries
	Node    string `json:"node,omitempty"` // the ingesting node; its window counts the event
	User    string `json:"user"`
	Product string `json:"product,omitempty"`
	Type    string `json:"type"`
	Phone   string `json:"phone,omitempty"` // optional: links the user to an SMS customer (E.164 after decoding)
	At      int64  `json:"at,omitempty"`    // ms since the epoch, set by the ingesting node: places the view in the window
}

// ErrBadEvent wraps every reason an event or a batch is refused.
var ErrBadEvent = errors.New("nav: bad event")

// ValidID reports whether id can be a product id: 1 to MaxIDLen bytes of
// letters, digits, '-' and '_', so that it is one word of a routing key
// (nav.view.<id>) and safe in URLs and store keys.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validText(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Validate checks the fields and normalizes Phone to E.164 (separators
// such as spaces, dashes and parentheses are dropped). A PRODUCT event needs a
// product id; other types may omit it.
func (e *Event) Validate() error {
	if !validText(e.User, MaxUserLen) {
		return fmt.Errorf("%w: user is required (1 to %d printable bytes)", ErrBadEvent, MaxUserLen)
	}
	if !validText(e.Type, MaxTypeLen) {
		return fmt.Errorf("%w: type is required (1 to %d printable bytes)", ErrBadEvent, MaxTypeLen)
	}
	if e.Product != "" || e.Type == TypeProduct {
		if !ValidID(e.Product) {
			return fmt.Errorf("%w: product must be 1 to %d letters, digits, '-' or '_'", ErrBadEvent, MaxIDLen)
		}
	}
	if e.Phone != "" {
		// Shops send what customers typed: drop the usual separators.
		p, err := protocol.NormalizePhone(strings.Map(func(r rune) rune {
			if r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' {
				return -1
			}
			return r
		}, e.Phone))
		if err != nil {
			return fmt.Errorf("%w: phone: %v", ErrBadEvent, err)
		}
		e.Phone = p
	}
	if len(e.ID) > 128 || len(e.Node) > 128 {
		return fmt.Errorf("%w: id or node too long", ErrBadEvent)
	}
	return nil
}

// DecodeEvents parses a POST /nav body: one event object or a non-empty
// array of at most max events (0 = no limit). Every event is validated; the
// first bad one refuses the whole batch (nothing is counted). Errors wrap
// ErrBadEvent, or ErrTooMany.
func DecodeEvents(data []byte, max int) ([]Event, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrBadEvent)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: body is not valid UTF-8", ErrBadEvent)
	}
	var events []Event
	switch data[0] {
	case '{':
		e, ok := fastEvent(data)
		if !ok {
			if err := strictUnmarshal(data, &e); err != nil {
				return nil, err
			}
		}
		events = []Event{e}
	case '[':
		if fast, ok := fastEvents(data, cmp.Or(max, math.MaxInt)); ok {
			events = fast
			break
		}
		if max > 0 && countTopLevel(data) > max {
			return nil, fmt.Errorf("%w: more than %d events", ErrTooMany, max)
		}
		if err := strictUnmarshal(data, &events); err != nil {
			return nil, err
		}
		if len(events) == 0 {
			return nil, fmt.Errorf("%w: empty array", ErrBadEvent)
		}
	default:
		return nil, fmt.Errorf("%w: body must be a JSON object or array", ErrBadEvent)
	}
	for i := range events {
		if err := events[i].Validate(); err != nil {
			if len(events) == 1 {
				return nil, err
			}
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
	}
	return events, nil
}

// ErrTooMany refuses a batch with more events than allowed (HTTP 413).
var ErrTooMany = errors.New("nav: too many events")

// DecodeEvent parses one event from the bus (nav.view.*), as published by a
// node or directly by a shop.
func DecodeEvent(data []byte) (Event, error) {
	e, ok := fastEvent(data)
	if !ok {
		data = bytes.TrimSpace(data)
		if len(data) == 0 || data[0] != '{' {
			return e, fmt.Errorf("%w: body must be a JSON object", ErrBadEvent)
		}
		if err := strictUnmarshal(data, &e); err != nil {
			return Event{}, err
		}
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// strictUnmarshal decodes exactly one JSON value (unknown fields allowed,
// trailing data refused by json.Unmarshal) and turns decode errors into
// ErrBadEvent.
func strictUnmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: field %q has the wrong type", ErrBadEvent, te.Field)
		}
		return fmt.Errorf("%w: malformed JSON", ErrBadEvent)
	}
	return nil
}

// countTopLevel counts the elements of a JSON array cheaply (commas at depth
// one, outside strings) so an oversized batch is refused before decoding.
// It may overcount on malformed input, which is refused anyway.
func countTopLevel(data []byte) int {
	depth, n, inStr, esc, any := 0, 0, false, false, false
	for _, c := range data {
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
			if depth == 1 {
				any = true
			}
		case '[', '{':
			if depth == 1 {
				any = true
			}
			depth++
		case ']', '}':
			depth--
		case ',':
			if depth == 1 {
				n++
			}
		case ' ', '\t', '\r', '\n':
		default:
			if depth == 1 {
				any = true
			}
		}
	}
	if any {
		n++
	}
	return n
}
