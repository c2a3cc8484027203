package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/switchboard/switchboard/agent"
	"github.com/switchboard/switchboard/agent/agenttest"
	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// startClient runs a real wsclient against the fake node until the test ends.
func startClient(t *testing.T, s *agenttest.Server) (*wsclient.Client, context.Context) {
	t.Helper()
	c, err := wsclient.New(wsclient.Options{URL: s.URL(), Token: s.Token, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("client Run: %v", err)
		}
	})
	return c, ctx
}

func waitScreen(t *testing.T, tm *teatest.TestModel, what string, cond func(string) bool) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return cond(string(b)) },
		teatest.WithDuration(3*time.Second), teatest.WithCheckInterval(5*time.Millisecond))
}

// TestFlowConnectReplyReconnect drives the real program, the real
// WebSocket client and the fake node: a conversation arrives, the agent
// replies, the connection drops, and after the resync the timeline shows
// every message once.
func TestFlowConnectReplyReconnect(t *testing.T) {
	s := agenttest.New(t)
	now := time.Now()
	s.AddConversation("+15551230001", protocol.Message{Text: "Hi, where is my order?", Received: now.Add(-time.Minute).UnixMilli()})
	c, ctx := startClient(t, s)
	m, err := agent.NewModel(agent.Config{Conn: c, Events: c.Events(), Done: ctx.Done(), ASCII: true, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 24))
	waitScreen(t, tm, "conversation", func(s string) bool {
		return strings.Contains(s, "Hi, where is my order?") && strings.Contains(s, "connected") && strings.Contains(s, "a minute ago")
	})

	tm.Type("It ships today")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	sbt.WaitFor(t, 3*time.Second, "reply at the node", func() bool {
		for _, f := range s.Received() {
			if f.Type == protocol.TypeResponse && f.Message == "It ships today" {
				return true
			}
		}
		return false
	})
	waitScreen(t, tm, "reply sent", func(s string) bool { return strings.Contains(s, "sent") })

	s.DropConnections()
	sbt.WaitFor(t, 3*time.Second, "reconnect", func() bool { return s.Connections() == 2 })
	s.Inbound("+15551230001", "Great, thanks!", time.Now())
	waitScreen(t, tm, "after resync", func(s string) bool { return strings.Contains(s, "Great, thanks!") })

	tm.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	final := ansi.Strip(tm.FinalModel(t, teatest.WithFinalTimeout(3*time.Second)).(*agent.Model).View().Content)
	for _, want := range []string{"Hi, where is my order?", "It ships today", "Great, thanks!"} {
		if n := strings.Count(final, "|  "+want); n != 1 { // timeline rows only, not the list preview
			t.Errorf("%q shown %d times, want once:\n%s", want, n, final)
		}
	}
	if !strings.Contains(final, "> you - sent") {
		t.Errorf("reply not shown as sent:\n%s", final)
	}
	if !strings.Contains(final, ":)") {
		t.Errorf("no sentiment mark:\n%s", final)
	}
}

// TestFlowStatsPaneWithCatalog drives the real program against the fake
// node: the catalog is read over HTTP on connect, a customer's stats frame
// shows the products by title, the top list one per line, and a reconnect
// reads the catalog again.
func TestFlowStatsPaneWithCatalog(t *testing.T) {
	s := agenttest.New(t)
	s.SetProducts(agenttest.Product{ID: "3", Title: "Full HD camcorder"}, agenttest.Product{ID: "7", Title: "Compact camera"})
	const phone = "+15551230001"
	s.AddConversation(phone, protocol.Message{Text: "Which camera is best?", Received: time.Now().Add(-time.Minute).UnixMilli()})
	c, ctx := startClient(t, s)
	catalog, err := agent.CatalogURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	m, err := agent.NewModel(agent.Config{Conn: c, Events: c.Events(), Done: ctx.Done(), ASCII: true, Tick: 20 * time.Millisecond, CatalogURL: catalog})
	if err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	waitScreen(t, tm, "conversation", func(s string) bool { return strings.Contains(s, "Which camera is best?") })
	sbt.WaitFor(t, 3*time.Second, "catalog request", func() bool { return s.ProductRequests() == 1 })

	s.Broadcast(protocol.Frame{Type: protocol.TypeStats, Top: []protocol.TopEntry{{Product: "3", Title: "Full HD camcorder", Count: 42}, {Product: "9", Count: 7}}})
	s.Broadcast(protocol.Frame{Type: protocol.TypeStats, Phone: phone, Product: "7", Categories: map[string]int64{"Cameras": 3, "Audio": 5}, Viewed: []string{"7", "3"}})
	waitScreen(t, tm, "stats pane", func(s string) bool {
		return strings.Contains(s, "Compact camera") && strings.Contains(s, "also: Audio 5, Cameras 3") && strings.Contains(s, "2. #9")
	})

	s.DropConnections()
	sbt.WaitFor(t, 3*time.Second, "catalog request after reconnect", func() bool { return s.ProductRequests() == 2 })

	tm.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	final := ansi.Strip(tm.FinalModel(t, teatest.WithFinalTimeout(3*time.Second)).(*agent.Model).View().Content)
	for _, want := range []string{phone + " viewed", "  Compact camera", "  Full HD camcorder", " 1. Full HD camcorder", " 2. #9"} {
		if !strings.Contains(final, want) {
			t.Errorf("final view lacks %q:\n%s", want, final)
		}
	}
}
