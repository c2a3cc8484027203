package agent

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Transfers (issue 18): the transfer key turns the composer into a
// two-step prompt — the agent to give the selected conversation to (empty:
// back to the waiting line), then a note for them — and Enter sends it. Esc
// cancels. The reply being typed is kept aside meanwhile and comes back.
// The node tells the agent which colleagues are free to take one (the
// colleagues frame); ↑/↓ in the first step choose among them, typing a
// name works as well.

// transferPrompt is the transfer being typed; step 0 is none.
type transferPrompt struct {
	step  int // 1: the agent's name, 2: the note
	pick  int // 1-based index in the colleagues chosen with ↑/↓; 0: none
	phone string
	to    string
	draft string // the composer's text before the prompt
}

// startTransfer opens the prompt for the selected conversation.
func (m *Model) startTransfer() tea.Cmd {
	c := m.selected()
	if c == nil {
		m.setNotice("no conversation to transfer")
		return nil
	}
	m.flow = transferPrompt{step: 1, phone: c.phone, draft: m.input.Value()}
	m.input.Reset()
	return nil
}

// transferKey handles a key press while the prompt is open; false lets
// the key go to the composer as usual.
func (m *Model) transferKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	if _, isText := typed(k); isText {
		return nil, false
	}
	switch {
	case m.flow.step == 1 && (k.String() == "up" || k.String() == "down"):
		m.pickColleague(k.String() == "down")
		return nil, true
	case key.Matches(k, m.keys.Close):
		m.endTransfer()
		m.setNotice("transfer cancelled")
		return nil, true
	case !key.Matches(k, m.keys.Send):
		return nil, false
	}
	text := strings.TrimSpace(m.input.Value())
	if m.flow.step == 1 {
		if text != "" {
			if err := protocol.ValidAgentName(text); err != nil {
				m.setNotice("not an agent name: " + err.Error())
				return nil, true
			}
		}
		m.flow.to, m.flow.step = text, 2
		m.input.Reset()
		return nil, true
	}
	if len(text) > protocol.MaxNote {
		m.setNotice(fmt.Sprintf("note too long: %d bytes, at most %d", len(text), protocol.MaxNote))
		return nil, true
	}
	f := protocol.Frame{Type: protocol.TypeTransfer, Phone: m.flow.phone, To: m.flow.to, Note: text, Ref: m.cfg.NewRef()}
	where := "to " + f.To
	if f.To == "" {
		where = "back to the waiting line"
	}
	m.setNotice("transferring " + f.Phone + " " + where + m.st.g.ellipsis)
	m.endTransfer()
	return m.cfg.send(f), true
}

// pickColleague moves the choice in the first step one colleague down (or
// up), through an empty name (back to the waiting line) at either end, and
// puts the chosen name in the prompt.
func (m *Model) pickColleague(down bool) {
	n := len(m.mates) + 1 // the colleagues and the empty name
	if down {
		m.flow.pick = (m.flow.pick + 1) % n
	} else {
		m.flow.pick = (m.flow.pick + n - 1) % n
	}
	if m.flow.pick == 0 {
		m.input.Reset()
		return
	}
	m.input.SetValue(m.mates[m.flow.pick-1])
}

// cleanNames keeps the valid agent names of a colleagues frame: they are
// shown on the agent's terminal.
func cleanNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if protocol.ValidAgentName(n) == nil {
			out = append(out, n)
		}
	}
	return out
}

func (m *Model) endTransfer() {
	draft := m.flow.draft
	m.flow = transferPrompt{}
	m.input.SetValue(draft)
}

// transferLabel is the composer's label while the prompt is open.
func (m *Model) transferLabel() string {
	if m.flow.step == 1 {
		free := "no colleague is free now"
		if len(m.mates) > 0 {
			free = "free: " + strings.Join(m.mates, ", ") + " (up/down choose)"
		}
		return m.st.composerOn.Render("Transfer "+m.flow.phone+" to") + m.st.dim.Render("  ("+free+"; or type a name; empty: back to the waiting line; enter, esc cancels)")
	}
	to := m.flow.to
	if to == "" {
		to = "the waiting line"
	}
	return m.st.composerOn.Render("Note for "+to) + m.st.dim.Render("  (optional; enter transfers, esc cancels)")
}

// releasedWhy is the notice for a released frame's reason.
func releasedWhy(phone, reason string) string {
	switch strings.TrimSpace(reason) {
	case "", "released":
		return "released " + phone
	case "transferred":
		return "transferred " + phone
	case "timeout":
		return phone + " was given to another agent: timed out (the customer waited too long for an answer, or you were away past the grace period)"
	}
	return "released " + phone + " (" + reason + ")"
}

// transferredNote is the notice and timeline line for a conversation
// received by a transfer.
func transferredNote(t *protocol.Transfer) string {
	s := "transferred by " + t.From
	if n := strings.TrimSpace(t.Note); n != "" {
		s += ": " + clean(n, false)
	}
	return s
}
