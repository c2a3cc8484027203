package protocol

import (
	"errors"
	"fmt"
	"strings"
)

// Direction says whether a message came from the customer or from an agent.
type Direction string

// Directions.
const (
	In  Direction = "in"
	Out Direction = "out"
)

// Status is the delivery state of a message. Inbound messages are always
// StatusReceived; replies move forward through queued → sent → delivered, or
// end in failed.
type Status string

// Statuses, as they appear on the wire.
const (
	StatusReceived  Status = "received"
	StatusQueued    Status = "queued"
	StatusSent      Status = "sent"
	StatusDelivered Status = "delivered"
	StatusFailed    Status = "failed"
)

// rank orders statuses so that a status never moves backwards. delivered and
// failed are both terminal: whichever is recorded first stays.
func (s Status) rank() int {
	switch s {
	case StatusQueued:
		return 1
	case StatusSent:
		return 2
	case StatusDelivered, StatusFailed:
		return 3
	case StatusReceived:
		return 3
	}
	return 0
}

// Valid reports whether s is one of the statuses of the protocol.
func (s Status) Valid() bool { return s.rank() > 0 }

// Terminal reports whether no later status can replace s.
func (s Status) Terminal() bool { return s.rank() == 3 }

// Advances reports whether moving from s to next is a step forward. A status
// never moves backwards and a terminal status never changes.
func (s Status) Advances(next Status) bool {
	return next.Valid() && next.rank() > s.rank()
}

// Message is one SMS in a conversation, inbound or outbound, as stored and as
// sent to agents.
type Message struct {
	ID          string    `json:"id"`
	Phone       string    `json:"phoneNumber"`
	Direction   Direction `json:"direction"`
	Text        string    `json:"message"`
	Received    int64     `json:"received"` // milliseconds since the epoch
	Agent       string    `json:"agent,omitempty"`
	Status      Status    `json:"status"`
	FromCountry string    `json:"fromCountry,omitempty"`
	// Media are the pictures, audio or files of an inbound MMS or WhatsApp
	// message, in order: the provider's URLs (not downloaded).
	Media []Media `json:"media,omitempty"`
	// OptOut marks an inbound message that changed or asked about the
	// customer's consent: OptOutStop, OptOutStart or OptOutHelp.
	OptOut string `json:"optOut,omitempty"`
}

// Media is one media item of a message.
type Media struct {
	URL         string `json:"url"`
	ContentType string `json:"contentType"`
}

// Opt-out kinds of an inbound message (Message.OptOut).
const (
	OptOutStop  = "stop"  // the customer opted out: nothing is sent to them
	OptOutStart = "start" // the customer opted in again
	OptOutHelp  = "help"  // the customer asked for help (recorded only)
)

// OptOutKeyword returns the opt-out kind of an inbound text: the whole
// message (case-insensitive, surrounding spaces ignored) is STOP, STOPALL,
// UNSUBSCRIBE, CANCEL, END or QUIT (OptOutStop), START, YES or UNSTOP
// (OptOutStart), HELP or INFO (OptOutHelp). Anything else is "".
func OptOutKeyword(text string) string {
	t := strings.TrimSpace(text)
	if len(t) > 11 {
		return ""
	}
	switch strings.ToUpper(t) {
	case "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT":
		return OptOutStop
	case "START", "YES", "UNSTOP":
		return OptOutStart
	case "HELP", "INFO":
		return OptOutHelp
	}
	return ""
}

// Channels of a conversation address.
const (
	ChannelSMS      = "sms"
	ChannelWhatsApp = "whatsapp"
)

// whatsApp prefixes a WhatsApp address, as Twilio writes it.
const whatsApp = "whatsapp:"

// MaxAddress is the longest conversation address.
const MaxAddress = len(whatsApp) + 16

// NormalizeAddress checks a conversation address, the key of a
// conversation: an E.164 phone number (an SMS conversation, see
// NormalizePhone) or "whatsapp:" and one (a WhatsApp conversation). A
// customer's SMS and WhatsApp are separate conversations.
func NormalizeAddress(a string) (string, error) {
	p, wa := strings.CutPrefix(a, whatsApp)
	if _, err := NormalizePhone(p); err != nil {
		if wa {
			return "", fmt.Errorf("whatsapp: %w", err)
		}
		return "", err
	}
	return a, nil
}

// Channel returns the channel of a conversation address: ChannelWhatsApp
// or ChannelSMS.
func Channel(addr string) string {
	if strings.HasPrefix(addr, whatsApp) {
		return ChannelWhatsApp
	}
	return ChannelSMS
}

// PhoneOf returns the phone number of a conversation address.
func PhoneOf(addr string) string { return strings.TrimPrefix(addr, whatsApp) }

// OnChannel writes phone (E.164, with or without a channel prefix) as an
// address on channel: "whatsapp:+1555..." or "+1555...".
func OnChannel(channel, phone string) string {
	phone = PhoneOf(phone)
	if channel == ChannelWhatsApp {
		return whatsApp + phone
	}
	return phone
}

// Limits on what the protocol accepts from the outside.
const (
	// MaxText is the longest message body accepted, in bytes. Twilio accepts
	// at most 1,600 characters; 4 bytes per character bounds the UTF-8 form.
	MaxText = 1600 * 4
	// MaxRef is the longest client reference accepted on a response.
	MaxRef = 128
	// MaxHistory is the largest history page served.
	MaxHistory = 200
	// MaxCapacity is the largest capacity an agent may declare.
	MaxCapacity = 1000
	// MaxAgentName is the longest agent name.
	MaxAgentName = 64
)

// ErrBadPhone is returned for a phone number that is not in E.164 form.
var ErrBadPhone = errors.New("phone number must be in E.164 form, like +15551234567")

// NormalizePhone checks an E.164 phone number ("+" then 3 to 15 digits, the
// first not zero) and returns it unchanged. It is strict on purpose: the phone
// number is the conversation key, so two spellings of one number must not
// make two conversations.
func NormalizePhone(p string) (string, error) {
	if len(p) < 4 || len(p) > 16 || p[0] != '+' || p[1] == '0' {
		return "", ErrBadPhone
	}
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return "", ErrBadPhone
		}
	}
	return p, nil
}

// Digits returns a conversation address as routing keys write it: an SMS
// number without its leading "+" (sms.in.15551234567), a WhatsApp address
// as "whatsapp." and its digits (sms.in.whatsapp.15551234567).
func Digits(addr string) string {
	if p, ok := strings.CutPrefix(addr, whatsApp); ok {
		return ChannelWhatsApp + "." + strings.TrimPrefix(p, "+")
	}
	return strings.TrimPrefix(addr, "+")
}

// ValidAgentName reports whether name can be used as an agent name: it
// appears in routing keys (conv.assigned.<agent>), so it is limited to
// letters, digits, '-' and '_'.
func ValidAgentName(name string) error {
	if name == "" || len(name) > MaxAgentName {
		return fmt.Errorf("agent name must be 1 to %d characters", MaxAgentName)
	}
	for _, r := range name {
		ok := r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !ok {
			return fmt.Errorf("agent name %q may hold only letters, digits, '-' and '_'", name)
		}
	}
	return nil
}
