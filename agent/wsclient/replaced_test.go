package wsclient_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
	"github.com/switchboard/switchboard/switchboard/token"
)

// startNode runs a real node on 127.0.0.1:0 and returns its /agent URL and
// the secret its tokens are signed with.
func startNode(t *testing.T) (string, []byte) {
	t.Helper()
	const secret = "wsclient-test-secret-0123456789abcdef"
	opts := switchboard.NewOptions()
	opts.Addr = "127.0.0.1:0"
	opts.DataDir = t.TempDir()
	opts.Node = "wsclient-test"
	opts.Secret = secret
	opts.StatsInterval = 0
	opts.PublicURL = "https://switchboard.test"
	opts.TwilioAccountSID, opts.TwilioAuthToken, opts.TwilioFrom = "AC00000000000000000000000000000000", "authtoken0123", "+15550000000"
	opts.TwilioAPIURL = "http://127.0.0.1:1" // never reached: nothing is sent
	logs := &sbt.SyncBuffer{}
	n, err := switchboard.New(opts, switchboard.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("node logs:\n%s", logs.String())
		}
	})
	return "ws://" + n.Addr().String() + "/agent", []byte(secret)
}

// Two clients of one agent on a real node: the newer connection closes the
// older, which stops (Replaced) instead of reconnecting and closing the
// newer in turn; Reconnect takes the agent back, and then the other one
// stops.
func TestReplacedStopsReconnecting(t *testing.T) {
	url, secret := startNode(t)
	tok, err := token.Issue(secret, "alice", 0, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	opts := wsclient.Options{URL: url, Token: tok, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	first, _ := wsclient.New(opts)
	firstEvents := run(t, first)
	sbt.WaitFor(t, 5*time.Second, "first connected", func() bool { return count(firstEvents(), wsclient.Connected, "") == 1 })

	second, _ := wsclient.New(opts)
	secondEvents := run(t, second)
	sbt.WaitFor(t, 5*time.Second, "first replaced", func() bool { return count(firstEvents(), wsclient.Replaced, "") == 1 })
	for _, e := range firstEvents() {
		if e.Kind == wsclient.Replaced && !errors.Is(e.Err, wsclient.ErrReplaced) {
			t.Fatalf("Replaced event error %v does not wrap ErrReplaced", e.Err)
		}
	}
	// The second holds: the first would have reconnected within 20 ms
	// many times over by the time this much traffic went by.
	sbt.WaitFor(t, 5*time.Second, "second connected", func() bool { return count(secondEvents(), wsclient.Connected, "") == 1 })
	sbt.WaitFor(t, 5*time.Second, "second hears its presence acked", func() bool { return count(secondEvents(), wsclient.Received, "") >= 1 })
	time.Sleep(200 * time.Millisecond) // ten backoffs: a reconnecting client would have dialled again
	if n := count(firstEvents(), wsclient.Connecting, ""); n != 1 {
		t.Fatalf("the replaced client dialled again by itself (%d dials)", n)
	}
	if n := count(secondEvents(), wsclient.Replaced, "") + count(secondEvents(), wsclient.Disconnected, ""); n != 0 {
		t.Fatalf("the newer client was closed %d times", n)
	}

	first.Reconnect() // F5: take over
	sbt.WaitFor(t, 5*time.Second, "first connected again", func() bool { return count(firstEvents(), wsclient.Connected, "") == 2 })
	sbt.WaitFor(t, 5*time.Second, "second replaced", func() bool { return count(secondEvents(), wsclient.Replaced, "") == 1 })
	if n := count(secondEvents(), wsclient.Connecting, ""); n != 1 {
		t.Fatalf("the second client dialled again by itself (%d dials)", n)
	}
}
