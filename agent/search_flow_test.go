package agent_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/switchboard/switchboard/agent"
	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
	"github.com/switchboard/switchboard/switchboard/token"
)

// TestFlowSearch drives the real program and WebSocket client against a
// real node (in-process, embedded bus, its own LevelDB): ctrl+f, a query,
// results from the agent's own conversations only (not from a customer
// still waiting), and Enter opens the conversation of the chosen result.
func TestFlowSearch(t *testing.T) {
	const account, authToken, secret = "AC00000000000000000000000000000000", "flowauthtoken0123456789abcdef012", "flow-secret"
	tw := twiliotest.NewServer(account, authToken)
	t.Cleanup(tw.Close)
	opts := switchboard.NewOptions()
	opts.Addr, opts.DataDir, opts.Node, opts.Secret = "127.0.0.1:0", t.TempDir(), "flow", secret
	opts.StatsInterval = 0
	opts.TwilioAccountSID, opts.TwilioAuthToken, opts.TwilioFrom, opts.TwilioAPIURL = account, authToken, "+15550000000", tw.URL()
	node, err := switchboard.New(opts, switchboard.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := node.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
	})
	base := "http://" + node.Addr().String()
	tok, err := token.Issue([]byte(secret), "alice", 2, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := wsclient.New(wsclient.Options{URL: "ws://" + node.Addr().String() + "/agent", Token: tok, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	m, err := agent.NewModel(agent.Config{Conn: c, Events: c.Events(), Done: ctx.Done(), ASCII: true, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := &watched{Model: m}
	tm := teatest.NewTestModel(t, w, teatest.WithInitialTermSize(110, 30))
	waitScreen := func(what string, cond func(string) bool) {
		t.Helper()
		sbt.WaitFor(t, 5*time.Second, what, func() bool { return cond(w.screen()) })
	}
	waitScreen("connected", func(s string) bool { return strings.Contains(s, "connected") })

	sms := func(sid, from, body string) {
		t.Helper()
		if code, resp := sbt.PostForm(t, base, "", "/sms/twilio", authToken, sbt.InboundForm(sid, from, "+15550000000", body)); code != 200 {
			t.Fatalf("webhook: %d %s", code, resp)
		}
	}
	const c1, c2, c3 = "+15553330001", "+15553330002", "+15553330003"
	sms("SMf1", c1, "Is the camera waterproof?")
	sms("SMf2", c2, "My camera arrived broken")
	waitScreen("two conversations", func(s string) bool { return strings.Contains(s, "Conversations (2)") })
	sms("SMf3", c3, "camera question from someone waiting") // alice is full: this one waits

	tm.Send(tea.KeyPressMsg{Code: 'f', Mod: tea.ModCtrl})
	tm.Type("Camera")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitScreen("results", func(s string) bool {
		return strings.Contains(s, "2 results for Camera") && strings.Contains(s, c2+" < just now - My camera arrived broken")
	})
	tm.Send(tea.KeyPressMsg{Code: tea.KeyDown})
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter}) // open c1's conversation
	waitScreen("c1 on screen", func(s string) bool { return !strings.Contains(s, "Search your conversations") })

	tm.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	tm.FinalModel(t, teatest.WithFinalTimeout(3*time.Second))
	v := w.screen()
	if !strings.Contains(v, "Reply to "+c1) || strings.Contains(v, "someone waiting") {
		t.Fatalf("want %s selected and the waiting customer's message nowhere:\n%s", c1, v)
	}
}

// watched keeps the screen as the model drew it after its last update
// (the terminal output teatest records holds only what changed), for
// waiting on whole lines.
type watched struct {
	*agent.Model
	mu   sync.Mutex
	last string
}

func (w *watched) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := w.Model.Update(msg)
	w.mu.Lock()
	w.last = ansi.Strip(w.Model.View().Content)
	w.mu.Unlock()
	return w, cmd
}

func (w *watched) screen() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}
