// Package switchboardtest holds helpers for tests that drive a real
// switchboard node from the outside: a scripted agent over WebSocket and a
// signed Twilio webhook poster. They speak only the public contract
// (DESIGN.md), so the same helpers serve in-process and binary tests.
//
// Helpers fail the test through testing.TB; an Agent is used by one test
// goroutine at a time.
package switchboardtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio"
)

// Agent is a scripted agent connected to a node.
type Agent struct {
	t      testing.TB
	Conn   *websocket.Conn
	frames chan protocol.Frame
	errc   chan error
}

// DialAgent connects to wsURL (ws://host/agent) with a bearer token.
func DialAgent(t testing.TB, wsURL, token string) *Agent {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	conn, resp, err := websocket.DefaultDialer.Dial(wsURL, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", wsURL, err, status)
	}
	a := &Agent{t: t, Conn: conn, frames: make(chan protocol.Frame, 1024), errc: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				a.errc <- err
				close(a.frames)
				return
			}
			f, err := protocol.DecodeEvent(data)
			if err != nil {
				a.errc <- fmt.Errorf("bad frame %q: %w", data, err)
				close(a.frames)
				return
			}
			a.frames <- f
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return a
}

// Send writes one frame.
func (a *Agent) Send(f protocol.Frame) {
	a.t.Helper()
	if err := a.Conn.WriteJSON(f); err != nil {
		a.t.Fatalf("send %s: %v", f.Type, err)
	}
}

// SendRaw writes one text frame as is.
func (a *Agent) SendRaw(data []byte) {
	a.t.Helper()
	if err := a.Conn.WriteMessage(websocket.TextMessage, data); err != nil {
		a.t.Fatalf("send raw: %v", err)
	}
}

// Next returns the next frame, failing the test after timeout.
func (a *Agent) Next(timeout time.Duration) protocol.Frame {
	a.t.Helper()
	select {
	case f, ok := <-a.frames:
		if !ok {
			a.t.Fatalf("connection closed: %v", <-a.errc)
		}
		return f
	case <-time.After(timeout):
		a.t.Fatalf("no frame within %v", timeout)
	}
	return protocol.Frame{}
}

// Expect skips frames until one of type typ satisfying match (nil = any)
// arrives, failing after timeout. It returns that frame.
func (a *Agent) Expect(typ string, match func(protocol.Frame) bool, timeout time.Duration) protocol.Frame {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []string
	for {
		left := time.Until(deadline)
		if left <= 0 {
			a.t.Fatalf("no %q frame within %v; saw %v", typ, timeout, seen)
		}
		select {
		case f, ok := <-a.frames:
			if !ok {
				a.t.Fatalf("connection closed while waiting for %q (saw %v): %v", typ, seen, <-a.errc)
			}
			if f.Type == typ && (match == nil || match(f)) {
				return f
			}
			seen = append(seen, f.Type+":"+f.Phone+f.Code)
		case <-time.After(left):
		}
	}
}

// ExpectNone fails if a frame of type typ arrives within d. Other frames
// are consumed.
func (a *Agent) ExpectNone(typ string, d time.Duration) {
	a.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-a.frames:
			if !ok {
				return
			}
			if f.Type == typ {
				a.t.Fatalf("unexpected %q frame: %+v", typ, f)
			}
		case <-deadline:
			return
		}
	}
}

// Closed waits until the server closes the connection and returns the error
// the read ended with (a *websocket.CloseError when a close frame came).
func (a *Agent) Closed(timeout time.Duration) error {
	a.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-a.frames:
			if !ok {
				return <-a.errc
			}
		case <-deadline:
			a.t.Fatalf("connection still open after %v", timeout)
		}
	}
}

// InboundForm returns a Twilio-shaped inbound SMS form.
func InboundForm(sid, from, to, body string) url.Values {
	return url.Values{
		"MessageSid":  {sid},
		"SmsSid":      {sid},
		"AccountSid":  {"AC00000000000000000000000000000000"},
		"From":        {from},
		"To":          {to},
		"Body":        {body},
		"NumMedia":    {"0"},
		"FromCountry": {"US"},
	}
}

// PostForm posts form to base+path, signed with authToken for the URL
// publicBase+path (publicBase = base when empty; no signature when authToken
// is empty). It returns the status code and body.
func PostForm(t testing.TB, base, publicBase, path, authToken string, form url.Values) (int, string) {
	t.Helper()
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if publicBase == "" {
		publicBase = base
	}
	if authToken != "" {
		req.Header.Set("X-Twilio-Signature", twilio.Signature(authToken, publicBase+path, form))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// GetJSON fetches base+path with an optional bearer token and decodes the
// JSON answer into v; it returns the status code.
func GetJSON(t testing.TB, url, bearer string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: decode: %v", url, err)
		}
	}
	return resp.StatusCode
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// child process that must be told its address up front.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond every 10ms until it holds, failing after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TryExpect returns the next frame of type typ arriving within d, skipping
// other frames; ok=false when none came.
func (a *Agent) TryExpect(typ string, d time.Duration) (protocol.Frame, bool) {
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-a.frames:
			if !ok {
				return protocol.Frame{}, false
			}
			if f.Type == typ {
				return f, true
			}
		case <-deadline:
			return protocol.Frame{}, false
		}
	}
}

// TryNext returns the next frame of any type arriving within d; ok=false
// when none came or the connection closed.
func (a *Agent) TryNext(d time.Duration) (protocol.Frame, bool) {
	select {
	case f, ok := <-a.frames:
		return f, ok
	case <-time.After(d):
		return protocol.Frame{}, false
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers (a
// child process's output, a node's log).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
