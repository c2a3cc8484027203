package wsclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/agent/agenttest"
	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run starts c.Run and collects its events until the test ends.
func run(t *testing.T, c *wsclient.Client) func() []wsclient.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var evs []wsclient.Event
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev := <-c.Events():
				mu.Lock()
				evs = append(evs, ev)
				mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}()
	runDone := make(chan error)
	go func() { runDone <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runDone; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
		<-done
	})
	return func() []wsclient.Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]wsclient.Event(nil), evs...)
	}
}

func count(evs []wsclient.Event, kind wsclient.EventKind, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Kind == kind && (typ == "" || e.Frame.Type == typ) {
			n++
		}
	}
	return n
}

func fastOpts(s *agenttest.Server) wsclient.Options {
	return wsclient.Options{URL: s.URL(), Token: s.Token, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}
}

func TestConnectSendsPresenceAndReceivesAssigned(t *testing.T) {
	s := agenttest.New(t)
	s.AddConversation("+15551230001", protocol.Message{Text: "hello", Received: 1000})
	c, err := wsclient.New(fastOpts(s))
	if err != nil {
		t.Fatal(err)
	}
	events := run(t, c)
	sbt.WaitFor(t, 2*time.Second, "assigned", func() bool { return count(events(), wsclient.Received, protocol.TypeAssigned) == 1 })
	if got := s.Received(); len(got) == 0 || got[0].Type != protocol.TypeAvailable {
		t.Fatalf("first frame from the client = %+v, want available", got)
	}
	if err := c.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: "+15551230001", Message: "hi", Ref: "r1"}); err != nil {
		t.Fatal(err)
	}
	sbt.WaitFor(t, 2*time.Second, "ack", func() bool { return count(events(), wsclient.Received, protocol.TypeAck) == 1 })
}

func TestReconnectResendsPresence(t *testing.T) {
	s := agenttest.New(t)
	s.AddConversation("+15551230001", protocol.Message{Text: "hello", Received: 1000})
	opts := fastOpts(s)
	opts.Away = true
	c, _ := wsclient.New(opts)
	events := run(t, c)
	sbt.WaitFor(t, 2*time.Second, "connected", func() bool { return count(events(), wsclient.Connected, "") == 1 })
	if err := c.SetPresence(false); err != nil {
		t.Fatal(err)
	}
	sbt.WaitFor(t, 2*time.Second, "assigned", func() bool { return count(events(), wsclient.Received, protocol.TypeAssigned) == 1 })

	s.DropConnections()
	sbt.WaitFor(t, 2*time.Second, "reconnect", func() bool { return count(events(), wsclient.Connected, "") == 2 })
	sbt.WaitFor(t, 2*time.Second, "assigned again", func() bool { return count(events(), wsclient.Received, protocol.TypeAssigned) == 2 })
	var types []string
	for _, f := range s.Received() {
		types = append(types, f.Type)
	}
	if strings.Join(types, ",") != "away,available,available" {
		t.Fatalf("frames sent = %v, want away,available,available (presence re-sent on reconnect)", types)
	}
	if count(events(), wsclient.Disconnected, "") < 1 {
		t.Fatal("no Disconnected event")
	}
}

func TestUnauthorized(t *testing.T) {
	s := agenttest.New(t)
	opts := fastOpts(s)
	opts.Token = "wrong"
	c, _ := wsclient.New(opts)
	events := run(t, c)
	sbt.WaitFor(t, 2*time.Second, "disconnected", func() bool { return count(events(), wsclient.Disconnected, "") >= 1 })
	ev := events()
	for _, e := range ev {
		if e.Kind == wsclient.Disconnected {
			if e.Err == nil || !strings.Contains(e.Err.Error(), "401") {
				t.Fatalf("error %v does not say 401", e.Err)
			}
			break
		}
	}
	if err := c.Send(protocol.Frame{Type: protocol.TypeAway}); !errors.Is(err, wsclient.ErrNotConnected) {
		t.Fatalf("Send while disconnected = %v, want ErrNotConnected", err)
	}
}

// The node answers a refused token with why (expired or invalid); the
// client passes that on instead of a bare 401, cleaned of control bytes.
func TestUnauthorizedSaysWhy(t *testing.T) {
	for _, body := range []string{"agent token expired\n", "agent token expired\x1b\x07\r\nsecond line"} {
		t.Run(fmt.Sprintf("%q", body), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, body)
			}))
			t.Cleanup(srv.Close)
			c, err := wsclient.New(wsclient.Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Token: "old", MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			events := run(t, c)
			sbt.WaitFor(t, 2*time.Second, "disconnected", func() bool { return count(events(), wsclient.Disconnected, "") >= 1 })
			for _, e := range events() {
				if e.Kind != wsclient.Disconnected {
					continue
				}
				if e.Err == nil || !strings.Contains(e.Err.Error(), "401") || !strings.Contains(e.Err.Error(), "agent token expired") {
					t.Fatalf("error %v does not say 401 and why", e.Err)
				}
				if strings.ContainsAny(e.Err.Error(), "\x1b\x07\r\n") || strings.Contains(e.Err.Error(), "second line") {
					t.Fatalf("error %q carries control characters", e.Err)
				}
				break
			}
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts wsclient.Options
		want string
	}{
		{"no url", wsclient.Options{Token: "t"}, "-url is required"},
		{"http url", wsclient.Options{URL: "http://x/agent", Token: "t"}, "ws:// or wss://"},
		{"no token", wsclient.Options{URL: "ws://127.0.0.1:1/agent"}, "-token is required"},
		{"capacity", wsclient.Options{URL: "ws://127.0.0.1:1/agent", Token: "t", Capacity: -1}, "capacity"},
		{"backoff", wsclient.Options{URL: "ws://127.0.0.1:1/agent", Token: "t", MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "max backoff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wsclient.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
