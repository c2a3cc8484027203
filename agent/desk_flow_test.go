package agent_test

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/switchboard/switchboard/agent"
	"github.com/switchboard/switchboard/agent/agenttest"
	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// startDesk runs the program against the fake node with one conversation
// of Maya Lopez and two canned replies.
func startDesk(t *testing.T) (*agenttest.Server, *teatest.TestModel) {
	t.Helper()
	s := agenttest.New(t)
	s.AddConversation(deskPhone, protocol.Message{Text: "Where is my parcel?", Received: time.Now().Add(-time.Minute).UnixMilli()})
	s.SetContact(deskPhone, protocol.Contact{Name: "Maya Lopez"})
	c, ctx := startClient(t, s)
	m, err := agent.NewModel(agent.Config{Conn: c, Events: c.Events(), Done: ctx.Done(), ASCII: true, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(110, 26))
	waitScreen(t, tm, "conversation", func(s string) bool { return strings.Contains(s, "Where is my parcel?") })
	s.Broadcast(protocol.Frame{Type: protocol.TypeCanned, Canned: []protocol.CannedReply{
		{Name: "ship", Text: "Hi {first_name}, it ships today."},
		{Name: "shop", Text: "Our shop opens at 9, {nickname}."},
		{Name: "thanks", Text: "Thanks {first_name} {last_name}!"},
	}})
	// Frames arrive in order: once this one shows, the canned list is in.
	s.Inbound(deskPhone, "Are you there?", time.Now())
	waitScreen(t, tm, "canned frame", func(s string) bool { return strings.Contains(s, "Are you there?") })
	return s, tm
}

const deskPhone = "+15551230001"

func finalView(t *testing.T, tm *teatest.TestModel) string {
	t.Helper()
	tm.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	return ansi.Strip(tm.FinalModel(t, teatest.WithFinalTimeout(3*time.Second)).(*agent.Model).View().Content)
}

// The contact's name is in the list, the timeline header and the
// composer; the agent renames the customer with alt+n.
func TestFlowContactNames(t *testing.T) {
	s, tm := startDesk(t)
	// startDesk waited for the first screen, which has the name already.
	tm.Type("Maya L.")
	tm.Send(tea.KeyPressMsg{Code: 'n', Mod: tea.ModAlt})
	sbt.WaitFor(t, 3*time.Second, "contact frame", func() bool {
		for _, f := range s.Received() {
			if f.Type == protocol.TypeContact && f.Phone == deskPhone && f.Name == "Maya L." {
				return true
			}
		}
		return false
	})
	s.Inbound(deskPhone, "Noted", time.Now()) // after the contact's update
	waitScreen(t, tm, "new name", func(v string) bool { return strings.Contains(v, "Noted") })
	final := finalView(t, tm)
	for _, want := range []string{"> Maya L.", "Maya L. - " + deskPhone, "Reply to Maya L.", "- Stats ---", "\nMaya L. "} {
		if !strings.Contains(final, want) {
			t.Errorf("final view lacks %q:\n%s", want, final)
		}
	}
}

// /name + Tab expands a canned reply with the contact's first name; a
// unique prefix expands too; an unknown placeholder stays and is named.
func TestFlowCannedExpansion(t *testing.T) {
	s, tm := startDesk(t)
	tm.Type("/ship")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyTab})
	waitScreen(t, tm, "expanded", func(v string) bool { return strings.Contains(v, "Hi Maya, it ships today.") })
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	sbt.WaitFor(t, 3*time.Second, "the expanded reply at the node", func() bool {
		for _, f := range s.Received() {
			if f.Type == protocol.TypeResponse && f.Message == "Hi Maya, it ships today." {
				return true
			}
		}
		return false
	})
	tm.Type("/sh")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyTab})
	waitScreen(t, tm, "ambiguous", func(v string) bool { return strings.Contains(v, "which one? /ship /shop") })
	tm.Type("o")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyTab})
	waitScreen(t, tm, "unknown placeholder", func(v string) bool {
		return strings.Contains(v, "Our shop opens at 9, {nickname}.") && strings.Contains(v, "not filled in: {nickname}")
	})
	final := finalView(t, tm)
	if !strings.Contains(final, "Our shop opens at 9, {nickname}.") {
		t.Errorf("composer lost the expansion:\n%s", final)
	}
}

// ctrl+l opens the list; ↓ and Enter insert the second reply, filled.
func TestFlowCannedPicker(t *testing.T) {
	_, tm := startDesk(t)
	tm.Send(tea.KeyPressMsg{Code: 'l', Mod: tea.ModCtrl})
	waitScreen(t, tm, "picker", func(v string) bool { return strings.Contains(v, "Canned replies") && strings.Contains(v, "/thanks") })
	tm.Send(tea.KeyPressMsg{Code: tea.KeyDown})
	tm.Send(tea.KeyPressMsg{Code: tea.KeyDown})
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitScreen(t, tm, "inserted", func(v string) bool { return strings.Contains(v, "Thanks Maya Lopez!") })
	final := finalView(t, tm)
	if strings.Contains(final, "Canned replies") || !strings.Contains(final, "Where is my parcel?") {
		t.Errorf("the list stayed open:\n%s", final)
	}
}

// ctrl+n writes a note: sent as a note frame, shown apart from replies.
func TestFlowNote(t *testing.T) {
	s, tm := startDesk(t)
	tm.Send(tea.KeyPressMsg{Code: 'n', Mod: tea.ModCtrl})
	waitScreen(t, tm, "note mode", func(v string) bool { return strings.Contains(v, "Note on Maya Lopez (agents only, never sent") })
	tm.Type("VIP, refund approved")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	sbt.WaitFor(t, 3*time.Second, "note at the node", func() bool {
		for _, f := range s.Received() {
			if f.Type == protocol.TypeResponse {
				t.Fatalf("a note was sent as a response: %+v", f)
			}
			if f.Type == protocol.TypeNote && f.Text == "VIP, refund approved" && f.Ref != "" {
				return true
			}
		}
		return false
	})
	waitScreen(t, tm, "note shown", func(v string) bool { return strings.Contains(v, "# note by") })
	final := finalView(t, tm)
	if n := strings.Count(final, "|  : VIP, refund approved"); n != 1 {
		t.Errorf("note shown %d times in the timeline, want once:\n%s", n, final)
	}
	if !strings.Contains(final, "note: VIP, refund approved") {
		t.Errorf("list preview does not say note:\n%s", final)
	}
}
