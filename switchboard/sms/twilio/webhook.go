package twilio

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// EmptyTwiML is the answer to an inbound SMS webhook: nothing to reply now
// (agents reply later through the Messages API). Content-Type text/xml.
const EmptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// Limits on webhook fields.
const (
	// MaxSidLen is the longest MessageSid accepted (Twilio's are 34).
	MaxSidLen = 64
	// MaxToLen is the longest To accepted. To is our own number, checked
	// loosely since it may be a short code or a channel address.
	MaxToLen = 64
	// MaxNumMedia is the largest NumMedia accepted (Twilio sends up to 10).
	MaxNumMedia = 100
	// MaxMediaURL is the longest MediaUrlN accepted.
	MaxMediaURL = 2048
	// MaxContentType is the longest MediaContentTypeN accepted.
	MaxContentType = 255
	// MaxFormBytes is a suitable limit for webhook bodies
	// (http.MaxBytesReader): a full Body, percent-encoded three times over,
	// plus room for Twilio's other parameters.
	MaxFormBytes = 3*protocol.MaxText + 16<<10
)

// ErrMalformed matches (errors.Is) every error of ParseInbound and
// ParseStatus: the form is not what Twilio sends. The node answers 400.
var ErrMalformed = errors.New("twilio: malformed webhook form")

// ErrUnknownStatus matches (errors.Is) the ParseStatus error for a
// MessageStatus this package does not know (Twilio adds statuses now and
// then). The node may answer 200 and ignore the callback instead of 400.
var ErrUnknownStatus = errors.New("twilio: unknown message status")

// FieldError names the webhook field that is wrong and why. It matches
// ErrMalformed and, through Unwrap, its cause.
type FieldError struct {
	Field   string
	Problem string
	Err     error // optional cause, e.g. protocol.ErrBadPhone or ErrUnknownStatus
}

func (e *FieldError) Error() string {
	s := "twilio: webhook field " + e.Field + ": " + e.Problem
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FieldError) Unwrap() error { return e.Err }

// Is makes every FieldError match ErrMalformed.
func (e *FieldError) Is(target error) bool { return target == ErrMalformed }

// Inbound is a checked inbound SMS webhook.
type Inbound struct {
	Sid         string // MessageSid, the dedupe key
	From        string // the customer: E.164 (SMS, MMS) or whatsapp:+E164 (WhatsApp)
	To          string // our number
	Body        string // may be empty when NumMedia > 0
	FromCountry string // ISO country code when Twilio knows it, else empty
	NumMedia    int
	// Media are MediaUrl0.. and MediaContentType0.., NumMedia of them.
	Media []protocol.Media
	// OptOut is Twilio's OptOutType (Advanced Opt-Out) as a protocol
	// opt-out kind (protocol.OptOutStop, ...), else empty.
	OptOut string
}

// ParseInbound checks the form of an inbound SMS, MMS or WhatsApp webhook:
// MessageSid (1 to 64 letters and digits), From (E.164 or whatsapp:+E164,
// see protocol.NormalizeAddress), To (required), Body (valid UTF-8, at most
// protocol.MaxText bytes, empty only with media), NumMedia (0 to
// MaxNumMedia) with MediaUrlN (an http(s) URL) and MediaContentTypeN
// (type/subtype) for each, OptOutType (STOP, START or HELP; others are
// ignored) and FromCountry (letters). The fields used must not be
// repeated. Errors are *FieldError naming the field.
func ParseInbound(form url.Values) (Inbound, error) {
	var in Inbound
	var err error
	if in.Sid, err = parseSid(form); err != nil {
		return Inbound{}, err
	}
	from, err := single(form, "From")
	if err != nil {
		return Inbound{}, err
	}
	if from == "" {
		return Inbound{}, &FieldError{Field: "From", Problem: "required"}
	}
	if in.From, err = protocol.NormalizeAddress(from); err != nil {
		return Inbound{}, &FieldError{Field: "From", Problem: fmt.Sprintf("%.20q is not a phone number", from), Err: err}
	}
	if in.To, err = single(form, "To"); err != nil {
		return Inbound{}, err
	}
	switch {
	case in.To == "":
		return Inbound{}, &FieldError{Field: "To", Problem: "required"}
	case len(in.To) > MaxToLen:
		return Inbound{}, &FieldError{Field: "To", Problem: fmt.Sprintf("longer than %d bytes", MaxToLen)}
	case !printable(in.To):
		return Inbound{}, &FieldError{Field: "To", Problem: "not printable UTF-8"}
	}
	if n, err := single(form, "NumMedia"); err != nil {
		return Inbound{}, err
	} else if n != "" {
		in.NumMedia, err = strconv.Atoi(n)
		if err != nil || in.NumMedia < 0 || in.NumMedia > MaxNumMedia || len(n) > 3 {
			return Inbound{}, &FieldError{Field: "NumMedia", Problem: fmt.Sprintf("%.10q is not a number from 0 to %d", n, MaxNumMedia)}
		}
	}
	if in.Body, err = single(form, "Body"); err != nil {
		return Inbound{}, err
	}
	switch {
	case len(in.Body) > protocol.MaxText:
		return Inbound{}, &FieldError{Field: "Body", Problem: fmt.Sprintf("longer than %d bytes", protocol.MaxText)}
	case !utf8.ValidString(in.Body):
		return Inbound{}, &FieldError{Field: "Body", Problem: "not valid UTF-8"}
	case in.Body == "" && in.NumMedia == 0:
		return Inbound{}, &FieldError{Field: "Body", Problem: "empty and the message has no media"}
	}
	if in.Media, err = parseMedia(form, in.NumMedia); err != nil {
		return Inbound{}, err
	}
	if in.OptOut, err = parseOptOut(form); err != nil {
		return Inbound{}, err
	}
	if in.FromCountry, err = single(form, "FromCountry"); err != nil {
		return Inbound{}, err
	}
	if len(in.FromCountry) > 8 || !letters(in.FromCountry) {
		return Inbound{}, &FieldError{Field: "FromCountry", Problem: fmt.Sprintf("%.10q is not a country code", in.FromCountry)}
	}
	return in, nil
}

// parseMedia reads the n media items of an MMS or WhatsApp message.
func parseMedia(form url.Values, n int) ([]protocol.Media, error) {
	var media []protocol.Media
	for i := range n {
		uf, tf := "MediaUrl"+strconv.Itoa(i), "MediaContentType"+strconv.Itoa(i)
		u, err := single(form, uf)
		if err != nil {
			return nil, err
		}
		if u == "" {
			return nil, &FieldError{Field: uf, Problem: fmt.Sprintf("required with NumMedia %d", n)}
		}
		if len(u) > MaxMediaURL {
			return nil, &FieldError{Field: uf, Problem: fmt.Sprintf("longer than %d bytes", MaxMediaURL)}
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || !printable(u) {
			return nil, &FieldError{Field: uf, Problem: fmt.Sprintf("%.40q is not an http(s) URL", u)}
		}
		ct, err := single(form, tf)
		if err != nil {
			return nil, err
		}
		if !contentType(ct) {
			return nil, &FieldError{Field: tf, Problem: fmt.Sprintf("%.40q is not a content type like image/jpeg", ct)}
		}
		media = append(media, protocol.Media{URL: u, ContentType: ct})
	}
	return media, nil
}

// parseOptOut maps Twilio's OptOutType (sent with Advanced Opt-Out) onto a
// protocol opt-out kind. A type Twilio adds later is ignored, not refused:
// a 400 would lose the message.
func parseOptOut(form url.Values) (string, error) {
	v, err := single(form, "OptOutType")
	if err != nil {
		return "", err
	}
	switch strings.ToUpper(v) {
	case "STOP":
		return protocol.OptOutStop, nil
	case "START":
		return protocol.OptOutStart, nil
	case "HELP":
		return protocol.OptOutHelp, nil
	}
	return "", nil
}

// contentType reports whether s looks like a MIME type: type/subtype of
// printable ASCII without spaces (parameters allowed after ';').
func contentType(s string) bool {
	if s == "" || len(s) > MaxContentType {
		return false
	}
	main, _, _ := strings.Cut(s, ";")
	typ, sub, ok := strings.Cut(main, "/")
	if !ok || typ == "" || sub == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return !strings.ContainsAny(main, " \t")
}

// StatusUpdate is a checked delivery-status callback.
type StatusUpdate struct {
	Sid          string          // MessageSid of our outbound message
	Status       protocol.Status // mapped with MapStatus
	TwilioStatus string          // Twilio's own word, for logs
	ErrorCode    string          // Twilio error code on failure, digits, else empty
}

// ParseStatus checks the form of a status callback: MessageSid (as for
// ParseInbound), MessageStatus (one MapStatus knows; otherwise an error that
// matches ErrUnknownStatus) and the optional ErrorCode (digits).
func ParseStatus(form url.Values) (StatusUpdate, error) {
	var su StatusUpdate
	var err error
	if su.Sid, err = parseSid(form); err != nil {
		return StatusUpdate{}, err
	}
	if su.TwilioStatus, err = single(form, "MessageStatus"); err != nil {
		return StatusUpdate{}, err
	}
	if su.TwilioStatus == "" {
		return StatusUpdate{}, &FieldError{Field: "MessageStatus", Problem: "required"}
	}
	var ok bool
	if su.Status, ok = MapStatus(su.TwilioStatus); !ok {
		return StatusUpdate{}, &FieldError{Field: "MessageStatus", Problem: fmt.Sprintf("%.20q", su.TwilioStatus), Err: ErrUnknownStatus}
	}
	if su.ErrorCode, err = single(form, "ErrorCode"); err != nil {
		return StatusUpdate{}, err
	}
	if len(su.ErrorCode) > 10 || !digits(su.ErrorCode) {
		return StatusUpdate{}, &FieldError{Field: "ErrorCode", Problem: fmt.Sprintf("%.12q is not a Twilio error code", su.ErrorCode)}
	}
	return su, nil
}

// MapStatus maps a Twilio message status onto the protocol's: accepted,
// scheduled, queued and sending are queued; sent is sent; delivered and read
// are delivered; failed, undelivered and canceled are failed. ok is false
// for anything else (including the inbound statuses receiving/received).
func MapStatus(twilioStatus string) (status protocol.Status, ok bool) {
	switch twilioStatus {
	case "accepted", "scheduled", "queued", "sending":
		return protocol.StatusQueued, true
	case "sent":
		return protocol.StatusSent, true
	case "delivered", "read":
		return protocol.StatusDelivered, true
	case "failed", "undelivered", "canceled":
		return protocol.StatusFailed, true
	}
	return "", false
}

func parseSid(form url.Values) (string, error) {
	sid, err := single(form, "MessageSid")
	if err != nil {
		return "", err
	}
	if sid == "" {
		return "", &FieldError{Field: "MessageSid", Problem: "required"}
	}
	if len(sid) > MaxSidLen || !alnum(sid) {
		return "", &FieldError{Field: "MessageSid", Problem: fmt.Sprintf("must be 1 to %d letters or digits", MaxSidLen)}
	}
	return sid, nil
}

// single returns the value of a field that may appear at most once: a
// repeated field makes the message ambiguous.
func single(form url.Values, field string) (string, error) {
	vs := form[field]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", &FieldError{Field: field, Problem: fmt.Sprintf("given %d times", len(vs))}
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func letters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
