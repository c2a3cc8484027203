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

// TestFlowSupervisor drives the supervisor's screen against the fake node:
// the live view shows the line with ages and every agent; the supervisor
// reads a waiting conversation and assigns it; no presence is ever sent.
func TestFlowSupervisor(t *testing.T) {
	s := agenttest.New(t)
	c, err := wsclient.New(wsclient.Options{URL: s.URL(), Token: s.Token, NoPresence: true, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
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
	m, err := agent.NewSupervisor(agent.Config{Conn: c, Events: c.Events(), Done: ctx.Done(), ASCII: true, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	waitScreen(t, tm, "connected", func(s string) bool { return strings.Contains(s, "connected") })
	sbt.WaitFor(t, 3*time.Second, "connection", func() bool { return s.Connections() == 1 })
	s.Broadcast(protocol.Frame{Type: protocol.TypeSupervisor, View: &protocol.QueueView{
		Waiting: []protocol.QueueWaiter{{Phone: "+15551230001", WaitingMs: 65000, Position: 1}, {Phone: "+15551230002", WaitingMs: 3000, Position: 2}},
		Agents:  []protocol.QueueAgent{{Name: "alice", State: "available", Capacity: 3, Load: 3, Node: "n1"}, {Name: "bob", State: "away", Capacity: 2, Load: 1, Node: "n2"}},
	}})
	waitScreen(t, tm, "view", func(s string) bool {
		return strings.Contains(s, "+15551230002") && strings.Contains(s, "1m05s") && strings.Contains(s, "on n2")
	})
	tm.Send(tea.KeyPressMsg{Code: tea.KeyDown})
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	sbt.WaitFor(t, 3*time.Second, "history request", func() bool {
		for _, f := range s.Received() {
			if f.Type == protocol.TypeHistory && f.Phone == "+15551230002" {
				return true
			}
		}
		return false
	})
	s.Broadcast(protocol.Frame{Type: protocol.TypeHistory, Phone: "+15551230002", List: []protocol.Message{{ID: "m1", Phone: "+15551230002", Direction: protocol.In, Text: "is anyone there?"}}})
	waitScreen(t, tm, "conversation", func(s string) bool { return strings.Contains(s, "customer: is anyone there?") })
	tm.Send(tea.KeyPressMsg{Code: 'a', Mod: tea.ModCtrl})
	tm.Type("bob")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	var assign protocol.Frame
	sbt.WaitFor(t, 3*time.Second, "assign", func() bool {
		for _, f := range s.Received() {
			if f.Type == protocol.TypeAssign {
				assign = f
				return true
			}
		}
		return false
	})
	if assign.Phone != "+15551230002" || assign.To != "bob" {
		t.Fatalf("assign frame %+v", assign)
	}
	tm.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	final := ansi.Strip(tm.FinalModel(t, teatest.WithFinalTimeout(3*time.Second)).(*agent.Supervisor).View().Content)
	for _, want := range []string{"2 waiting", "2 agents", ">  2. +15551230002", "alice            available 3/3  on n1", "assigning +15551230002 to bob"} {
		if !strings.Contains(final, want) {
			t.Errorf("final view lacks %q:\n%s", want, final)
		}
	}
	for _, f := range s.Received() {
		if f.Type == protocol.TypeAvailable || f.Type == protocol.TypeAway {
			t.Fatalf("the supervisor sent presence: %+v", f)
		}
	}
}
