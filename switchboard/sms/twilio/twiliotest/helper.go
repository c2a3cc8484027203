// Package twiliotest is the test helper over fakeapi, the fake Twilio REST
// API: the same Server, plus waits that fail the test and a constructor that
// closes the fake when the test ends. Shipped code uses fakeapi directly;
// only tests import this package (it imports testing).
package twiliotest

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/sms/twilio/fakeapi"
)

// SentMessage is one CreateMessage request the fake received (fakeapi).
type SentMessage = fakeapi.SentMessage

// Number is an incoming phone number of the fake account (fakeapi).
type Number = fakeapi.Number

// Server is a fake Twilio REST API (every method of fakeapi.Server) with
// waits for tests.
type Server struct {
	*fakeapi.Server
}

// NewServer starts a fake Twilio for the account on 127.0.0.1 with a port
// chosen by the kernel; the caller closes it. It panics if it cannot
// listen, like httptest.
func NewServer(accountSID, authToken string) *Server {
	return &Server{fakeapi.NewServer(accountSID, authToken)}
}

// New returns a fake that does not listen, for mounting Handler inside
// another server.
func New(accountSID, authToken string) *Server {
	return &Server{fakeapi.New(accountSID, authToken)}
}

// Start is NewServer that closes the fake when t ends.
func Start(t testing.TB, accountSID, authToken string) *Server {
	s := NewServer(accountSID, authToken)
	t.Cleanup(s.Close)
	return s
}

// WaitSent waits until at least n requests were received (Sent) and
// returns them; it fails t after timeout.
func (s *Server) WaitSent(t testing.TB, n int, timeout time.Duration) []SentMessage {
	t.Helper()
	return wait(t, n, timeout, s.AwaitSent, "requests")
}

// WaitAccepted waits until at least n messages were accepted (Accepted).
func (s *Server) WaitAccepted(t testing.TB, n int, timeout time.Duration) []SentMessage {
	t.Helper()
	return wait(t, n, timeout, s.AwaitAccepted, "accepted messages")
}

func wait(t testing.TB, n int, timeout time.Duration, await func(context.Context, int) ([]SentMessage, error), what string) []SentMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got, err := await(ctx, n)
	if err != nil {
		t.Fatalf("twiliotest: %d %s after %v, want %d", len(got), what, timeout, n)
	}
	return got
}
