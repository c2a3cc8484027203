package sms

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Outgoing is one agent reply to be sent as an SMS.
type Outgoing struct {
	// ID is our message id, used in logs and as an idempotency hint.
	ID string
	// To is the customer's phone number in E.164 form.
	To string
	// From is our number. Empty means the provider's configured number.
	From string
	// Body is the message text.
	Body string
	// StatusCallback is the URL the provider posts delivery updates to.
	// Empty means no callbacks.
	StatusCallback string
}

// Result is what the provider answered for an accepted message.
type Result struct {
	// ProviderID is the provider's id for the message (Twilio: "SM..."), the
	// key that later status callbacks carry.
	ProviderID string
	// Status is the delivery status the provider reported at acceptance,
	// usually queued (Twilio) or sent (console).
	Status protocol.Status
}

// Sender sends one SMS. Implementations are safe for concurrent use.
type Sender interface {
	// Send makes exactly one attempt. Errors should be *SendError so that
	// Deliver can tell temporary from permanent failures.
	Send(ctx context.Context, m Outgoing) (Result, error)
	// Name names the provider in logs and metrics ("twilio", "console").
	Name() string
}

// Sent is a message the provider already holds, as a Finder reports it.
type Sent struct {
	// ProviderID is the provider's id for it (Twilio: "SM...").
	ProviderID string
	// Status is its delivery status now.
	Status protocol.Status
	// Created is when the provider created it.
	Created time.Time
}

// Finder is implemented by senders that can look up messages they already
// sent. A send whose outcome is unknown (an attempt that timed out after
// its request was written, a node that crashed between the provider's
// answer and recording it, another node's reply adopted after its death)
// is looked up before it is attempted again, so that the customer does not
// get it twice.
type Finder interface {
	// Find returns the messages to m.To from m.From (the configured number
	// when empty) whose body is m.Body and that the provider created at or
	// after since, newest first. An error means the answer is unknown: the
	// caller must not conclude that nothing was sent.
	Find(ctx context.Context, m Outgoing, since time.Time) ([]Sent, error)
}

// SendError is a failed send attempt, classified.
type SendError struct {
	// Temporary is true when the same request may succeed later: network
	// errors, timeouts, HTTP 5xx and 429.
	Temporary bool
	// StatusCode is the HTTP status of the provider's answer; 0 when there
	// was none (network error).
	StatusCode int
	// Code is the provider's error code (Twilio: 21211 invalid To, ...); 0
	// when unknown.
	Code int
	// Message is the provider's error message, if any.
	Message string
	// Err is the underlying error, if any.
	Err error
	// MaybeSent is true when the request was written to the provider but
	// no answer was read (a timeout, a connection reset): the provider may
	// have accepted the message.
	MaybeSent bool
}

func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("sms: send failed")
	if e.Temporary {
		b.WriteString(" (temporary)")
	}
	if e.StatusCode != 0 {
		b.WriteString(": HTTP ")
		b.WriteString(strconv.Itoa(e.StatusCode))
	}
	if e.Code != 0 {
		b.WriteString(": code ")
		b.WriteString(strconv.Itoa(e.Code))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *SendError) Unwrap() error { return e.Err }

// TemporaryStatus reports whether an HTTP status from a provider is worth
// retrying: 5xx and 429 Too Many Requests.
func TemporaryStatus(code int) bool {
	return code == 429 || (code >= 500 && code <= 599)
}

// IsTemporary reports whether err is worth retrying. A *SendError anywhere
// in the chain decides by itself. Otherwise cancellation and deadline of the
// caller's context are permanent (the caller gave up), while network errors
// and timeouts are temporary. Anything unknown is permanent: retrying an
// error we do not understand risks sending the same SMS twice.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	if se, ok := errors.AsType[*SendError](err); ok {
		return se.Temporary
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}
