package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
)

// The supervisor picks a conversation an agent holds, below the waiting
// line, and reads it (history, read-only); only waiting ones are assigned.
func TestSupervisorReadsAHeldConversation(t *testing.T) {
	conn := &recConn{}
	m, err := NewSupervisor(Config{Conn: conn, Now: func() time.Time { return t0 }, ASCII: true})
	if err != nil {
		t.Fatal(err)
	}
	step := func(msg any) {
		_, cmd := m.Update(msg)
		if cmd != nil {
			cmd()
		}
	}
	step(EventMsg(wsclient.Event{Kind: wsclient.Received, Frame: protocol.Frame{Type: protocol.TypeSupervisor, View: &protocol.QueueView{
		Waiting: []protocol.QueueWaiter{{Phone: p1, WaitingMs: 1000, Position: 1}},
		Agents: []protocol.QueueAgent{{Name: "alice", State: "available", Capacity: 2, Load: 2, Node: "n1", Conversations: []string{p2, "+15551230003"}},
			{Name: "bob", State: "away", Capacity: 1, Node: "n1", Conversations: []string{}}},
	}}}))
	screen := ansi.Strip(m.render())
	if !strings.Contains(screen, "alice            available 2/2  on n1\n      "+p2+"\n      +15551230003\n  bob") {
		t.Fatalf("the agents' conversations are not listed under them:\n%s", screen)
	}
	step(press("down"))
	step(press("down")) // alice's second
	step(press("down")) // stays: the last row
	if got := m.picked(); got != "+15551230003" {
		t.Fatalf("picked %q, want alice's second conversation", got)
	}
	step(press("ctrl+a"))
	if m.typing || !strings.Contains(m.notice, "pick a waiting conversation") {
		t.Fatalf("ctrl+a on a held conversation: typing %v notice %q", m.typing, m.notice)
	}
	step(press("enter"))
	sent := conn.sent()
	if len(sent) != 1 || sent[0].Type != protocol.TypeHistory || sent[0].Phone != "+15551230003" {
		t.Fatalf("sent %+v, want a history request for the held conversation", sent)
	}
	step(EventMsg(wsclient.Event{Kind: wsclient.Received, Frame: protocol.Frame{Type: protocol.TypeHistory, Phone: "+15551230003", List: []protocol.Message{
		{ID: "m1", Phone: "+15551230003", Direction: protocol.In, Text: "where is it?"},
		{ID: "m2", Phone: "+15551230003", Direction: protocol.Note, Agent: "carol", Text: "transferred to alice: VIP"},
	}}}))
	screen = ansi.Strip(m.render())
	for _, want := range []string{"Conversation +15551230003 (read-only)", "customer: where is it?", "note by carol: transferred to alice: VIP", ">     +15551230003"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
}
