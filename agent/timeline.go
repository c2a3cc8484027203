package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// timeline renders the selected conversation, newest at the bottom. Only the
// messages that reach the screen are rendered: it walks back from the
// newest visible message until the height is filled, so the cost of a frame
// does not depend on the length of the conversation.
func (m *Model) timeline(w, h int) []string {
	c := m.selected()
	if c == nil {
		return []string{m.st.title.Render("No conversation selected"), m.st.dim.Render("Conversations appear here when the switchboard assigns them.")}
	}
	header := m.st.title.Render(shownAddr(c.phone))
	for _, mark := range []string{m.channelMark(c), m.optOutMark(c)} {
		if mark != "" {
			header += m.st.g.sep + mark
		}
	}
	if c.offset > 0 {
		more := " (pgdn for newer)"
		if c.newBelow > 0 {
			more = fmt.Sprintf(", %d new below (pgdn)", c.newBelow)
		}
		header += m.st.dim.Render("  " + m.st.g.up + " scrolled back" + more)
	}
	if c.transfer != "" {
		header += m.st.dim.Render("  " + c.transfer)
	}
	rows, first := m.rows(c, w, h-1)
	if len(rows) < h-1 && first == 0 {
		var top string
		switch {
		case c.loading:
			top = "loading older messages" + m.st.g.ellipsis
		case c.more:
			top = "pgup loads older messages"
		default:
			top = "beginning of the conversation"
		}
		rows = append([]string{m.st.dim.Render(top)}, rows...)
	}
	return append([]string{header}, rows...)
}

// rows returns at most h lines ending with the newest visible message, and
// the index of the topmost message drawn.
func (m *Model) rows(c *conversation, w, h int) ([]string, int) {
	if h <= 0 || len(c.msgs) == 0 {
		return nil, 0
	}
	var chunks [][]string
	n, first := 0, 0
	for i := len(c.msgs) - 1 - min(c.offset, len(c.msgs)-1); i >= 0 && n < h; i-- {
		lines := m.renderEntry(c.msgs[i], w)
		chunks = append(chunks, lines)
		n += len(lines)
		first = i
	}
	out := make([]string, 0, n)
	for _, ch := range slices.Backward(chunks) {
		out = append(out, ch...)
	}
	if len(out) > h {
		out = out[len(out)-h:]
	}
	return out, first
}

// firstVisible is the index of the topmost message on screen.
func (m *Model) firstVisible(c *conversation) int {
	_, first := m.rows(c, m.rightWidth(), m.timelineHeight())
	return first
}

// author names who wrote a reply: "you" for this client's own replies
// (or a reply with no author), else the agent the node names.
func author(e *entry) string {
	if e.Message.Agent != "" && e.ref == "" {
		return clean(e.Message.Agent, false)
	}
	return "you"
}

// renderEntry draws one message: a header line, then its wrapped text.
//
//	◀ customer · 🙂 · 45 seconds ago
//	  Hi, my order hasn't arrived
//	▶ you · sent · just now
//	  Let me check that for you.
func (m *Model) renderEntry(e *entry, w int) []string {
	g := m.st.g
	var head string
	when := m.cfg.RelTime.Phrase(e.Time, m.now)
	if e.Message.Direction == protocol.In {
		head = m.st.in.Render(g.in+" customer") + g.sep + g.mark(e.Sentiment.Mark) + g.sep + m.st.dim.Render(when)
	} else {
		who := author(e)
		state := e.state()
		switch state {
		case "failed":
			if e.failed != "" {
				state = m.st.failed.Render("failed: " + clean(e.failed, false) + " (ctrl+r retries)")
				break
			}
			// Stored, then refused or undelivered by the SMS provider:
			// ctrl+r would resend the same ref, which the node ignores.
			why := e.reason
			if why == "" {
				why = "not delivered"
			}
			state = m.st.failed.Render("failed: " + clean(why, false))
		case "delivered", "sent":
			state = m.st.ok.Render(state)
		case "sending":
			state = m.st.dim.Render(state + g.ellipsis)
		default:
			state = m.st.dim.Render(state)
		}
		head = m.st.out.Render(g.out+" "+who) + g.sep + state + g.sep + m.st.dim.Render(when)
	}
	lines := []string{head}
	if e.Message.Text != "" || len(e.Message.Media) == 0 {
		text := ansi.Wrap(clean(e.Message.Text, true), max(w-2, 1), "")
		for _, l := range strings.Split(text, "\n") {
			lines = append(lines, "  "+l)
		}
	}
	return append(lines, m.mediaLines(e, w)...)
}
