package wsclient_test

import (
	"context"
	"errors"
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

// goleveldb's mpoolDrain goroutine (of the real node in replaced_test.go)
// outlives DB.Close by one tick; it is not ours and does stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

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

// runToEnd runs c until Run returns by itself, collecting its events.
func runToEnd(t *testing.T, c *wsclient.Client) ([]wsclient.Event, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var evs []wsclient.Event
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-c.Events():
			evs = append(evs, ev)
		case err := <-runDone:
			return evs, err
		case <-timeout:
			cancel()
			t.Fatalf("Run still retrying after 5 s; events %+v (error %v)", evs, <-runDone)
		}
	}
}

// A refused token stops the client after one attempt: retrying cannot
// help. The error says 401 and why (the node's reason, cleaned of control
// bytes), and wraps ErrTokenRefused.
func TestUnauthorizedStopsAndSaysWhy(t *testing.T) {
	s := agenttest.New(t)
	opts := fastOpts(s)
	opts.Token = "wrong"
	for _, tc := range []struct{ name, url, body, want string }{
		{"fake node", s.URL(), "", "401"},
		{"expired", "", "agent token expired\n", "token refused (401): agent token expired"},
		{"control bytes", "", "agent token expired\x1b\x07\r\nsecond line", "token refused (401): agent token expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			if url == "" {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/plain; charset=utf-8")
					w.WriteHeader(http.StatusUnauthorized)
					io.WriteString(w, tc.body)
				}))
				t.Cleanup(srv.Close)
				url = "ws" + strings.TrimPrefix(srv.URL, "http")
			}
			o := opts
			o.URL = url
			c, err := wsclient.New(o)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := runToEnd(t, c)
			if !errors.Is(err, wsclient.ErrTokenRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want ErrTokenRefused saying %q", err, tc.want)
			}
			if strings.ContainsAny(err.Error(), "\x1b\x07\r\n") || strings.Contains(err.Error(), "second line") {
				t.Fatalf("error %q carries control characters", err)
			}
			if count(evs, wsclient.Connecting, "") != 1 || count(evs, wsclient.Refused, "") != 1 || count(evs, wsclient.Disconnected, "") != 0 {
				t.Fatalf("events %+v, want one attempt ending Refused", evs)
			}
			if err := c.Send(protocol.Frame{Type: protocol.TypeAway}); !errors.Is(err, wsclient.ErrNotConnected) {
				t.Fatalf("Send after refusal = %v, want ErrNotConnected", err)
			}
		})
	}
}

// A URL without the /agent path says so, not "bad handshake".
func TestMissingAgentPathSaysSo(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	c, err := wsclient.New(wsclient.Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/agnet", Token: "t", MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	events := run(t, c)
	sbt.WaitFor(t, 2*time.Second, "disconnected", func() bool { return count(events(), wsclient.Disconnected, "") >= 1 })
	for _, e := range events() {
		if e.Kind == wsclient.Disconnected {
			const want = "the node has no WebSocket at /agnet (404): -url must end in /agent"
			if e.Err == nil || !strings.Contains(e.Err.Error(), want) || strings.Contains(e.Err.Error(), "bad handshake") {
				t.Fatalf("error %v, want %q", e.Err, want)
			}
			break
		}
	}
}

// Reconnect dials at once instead of waiting out the backoff.
func TestReconnectNow(t *testing.T) {
	s := agenttest.New(t)
	opts := fastOpts(s)
	opts.MinBackoff, opts.MaxBackoff = time.Hour, time.Hour
	c, _ := wsclient.New(opts)
	events := run(t, c)
	sbt.WaitFor(t, 2*time.Second, "connected", func() bool { return count(events(), wsclient.Connected, "") == 1 })
	c.Reconnect() // while connected: does nothing later
	s.DropConnections()
	sbt.WaitFor(t, 2*time.Second, "disconnected", func() bool { return count(events(), wsclient.Disconnected, "") == 1 })
	for _, e := range events() {
		if e.Kind == wsclient.Disconnected && e.RetryIn < 30*time.Minute {
			t.Fatalf("retry in %v, want the hour's backoff", e.RetryIn)
		}
	}
	if n := count(events(), wsclient.Connected, ""); n != 1 {
		t.Fatalf("a Reconnect made while connected reconnected later (%d connects)", n)
	}
	c.Reconnect()
	sbt.WaitFor(t, 2*time.Second, "reconnected", func() bool { return count(events(), wsclient.Connected, "") == 2 })
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

// A node that refuses the agent for a while (429 after a flood) says how
// long in Retry-After: the client waits that long, at most a minute, not
// its shorter backoff, and shows why.
func TestRetryAfterIsHonoured(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{{"3", 3 * time.Second}, {"3600", time.Minute}, {"soon", 0}} {
		t.Run(tc.header, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tc.header)
				http.Error(w, "rate limit exceeded: a connection of alice flooded this node; reconnect in 3 s", http.StatusTooManyRequests)
			}))
			t.Cleanup(srv.Close)
			c, err := wsclient.New(wsclient.Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Token: "t",
				MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			events := run(t, c)
			sbt.WaitFor(t, 2*time.Second, "disconnected", func() bool { return count(events(), wsclient.Disconnected, "") >= 1 })
			for _, e := range events() {
				if e.Kind != wsclient.Disconnected {
					continue
				}
				if e.Err == nil || !strings.Contains(e.Err.Error(), "HTTP 429: rate limit exceeded") {
					t.Fatalf("error %v, want the node's reason", e.Err)
				}
				if tc.want > 0 && e.RetryIn != tc.want {
					t.Fatalf("retry in %v, want %v", e.RetryIn, tc.want)
				}
				if tc.want == 0 && e.RetryIn >= 40*time.Millisecond {
					t.Fatalf("retry in %v for an unreadable Retry-After, want the backoff", e.RetryIn)
				}
				break
			}
		})
	}
}
