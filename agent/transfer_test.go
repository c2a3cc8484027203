package agent_test

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/switchboard/switchboard/agent"
	"github.com/switchboard/switchboard/agent/agenttest"
	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// TestFlowTransfer drives the real program against the fake node: the
// transfer key, an agent's name and a note send a transfer frame and keep
// the reply being typed; a conversation received by a transfer shows who
// sent it and the note; transferred and timed-out releases say so.
func TestFlowTransfer(t *testing.T) {
	s := agenttest.New(t)
	const phone, other = "+15551230001", "+15551230002"
	s.AddConversation(phone, protocol.Message{Text: "I want a refund", Received: time.Now().Add(-time.Minute).UnixMilli()})
	c, ctx := startClient(t, s)
	m, err := agent.NewModel(agent.Config{Conn: c, Events: c.Events(), Done: ctx.Done(), ASCII: true, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(140, 24))
	waitScreen(t, tm, "conversation", func(s string) bool { return strings.Contains(s, "I want a refund") })

	tm.Type("half a reply")
	tm.Send(tea.KeyPressMsg{Code: 'g', Mod: tea.ModCtrl})
	waitScreen(t, tm, "name prompt", func(s string) bool { return strings.Contains(s, "Transfer "+phone+" to") })
	tm.Type("bob")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitScreen(t, tm, "note prompt", func(s string) bool { return strings.Contains(s, "Note for bob") })
	tm.Type("refund approved, please confirm")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	var sent protocol.Frame
	sbt.WaitFor(t, 3*time.Second, "transfer at the node", func() bool {
		for _, f := range s.Received() {
			if f.Type == protocol.TypeTransfer {
				sent = f
				return true
			}
		}
		return false
	})
	if sent.Phone != phone || sent.To != "bob" || sent.Note != "refund approved, please confirm" {
		t.Fatalf("transfer frame %+v", sent)
	}
	for _, f := range s.Received() {
		if f.Type == protocol.TypeResponse {
			t.Fatalf("the prompt's text was sent as a reply: %+v", f)
		}
	}
	waitScreen(t, tm, "draft back", func(s string) bool {
		return strings.Contains(s, "half a reply") && strings.Contains(s, "Reply to "+phone)
	})

	s.Broadcast(protocol.Frame{Type: protocol.TypeReleased, Phone: phone, Reason: "transferred"})
	waitScreen(t, tm, "transferred notice", func(s string) bool { return strings.Contains(s, "0 conversations - transferred") })

	s.Broadcast(protocol.Frame{Type: protocol.TypeAssigned, Phone: other, Transfer: &protocol.Transfer{From: "carol", Note: "VIP customer"},
		List: []protocol.Message{{ID: "m9", Phone: other, Direction: protocol.In, Text: "hello again", Received: time.Now().UnixMilli()}}})
	waitScreen(t, tm, "transfer note", func(s string) bool {
		return strings.Contains(s, "hello again") && strings.Contains(s, "transferred by carol: VIP customer")
	})
	s.Broadcast(protocol.Frame{Type: protocol.TypeReleased, Phone: other, Reason: "timeout"})
	waitScreen(t, tm, "timeout notice", func(s string) bool { return strings.Contains(s, "was given to another agent: timed out") })

	// Esc cancels a transfer: nothing is sent.
	s.Broadcast(protocol.Frame{Type: protocol.TypeAssigned, Phone: phone, List: []protocol.Message{{ID: "m10", Phone: phone, Direction: protocol.In, Text: "back", Received: time.Now().UnixMilli()}}})
	waitScreen(t, tm, "back", func(s string) bool { return strings.Contains(s, "back") })
	tm.Send(tea.KeyPressMsg{Code: 'g', Mod: tea.ModCtrl})
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEscape})
	waitScreen(t, tm, "cancelled", func(s string) bool { return strings.Contains(s, "transfer cancelled") })
	tm.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	tm.FinalModel(t, teatest.WithFinalTimeout(3*time.Second))
	n := 0
	for _, f := range s.Received() {
		if f.Type == protocol.TypeTransfer {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d transfer frames, want 1", n)
	}
}
