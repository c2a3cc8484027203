package agent

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Search over the agent's own conversations (ctrl+f). While it is open the
// right pane shows the query and its results and takes the keys: text goes
// to the query, never to the composer (whose draft stays as it was). Enter
// asks the node (a search frame) or, once the results are those of the
// query typed, opens the chosen result's conversation; ↑/↓ choose; pgdn at
// the last result loads the next page; esc or ctrl+f close.

// searchState is the search pane.
type searchState struct {
	open    bool
	query   string // as typed
	ref     string // the request whose answer is awaited or shown
	asked   string // the query the results answer
	results []protocol.Message
	more    bool
	loading bool
	sel     int
	err     string // the node's refusal, or why the request was not sent
}

func (m *Model) toggleSearch() {
	m.search.open = !m.search.open
}

// searchPaste takes pasted text into the query while the pane is open,
// not into the draft, and reports whether it did.
func (m *Model) searchPaste(text string) bool {
	if m.search.open {
		m.search.query += strings.ReplaceAll(text, "\n", " ")
	}
	return m.search.open
}

// searchKey handles a key press while the search pane is open.
func (m *Model) searchKey(k tea.KeyPressMsg) tea.Cmd {
	s := &m.search
	if text, ok := typed(k); ok {
		s.query += strings.ReplaceAll(text, "\n", " ")
		return nil
	}
	switch k.String() {
	case "esc", "ctrl+f":
		s.open = false
	case "backspace":
		if r := []rune(s.query); len(r) > 0 {
			s.query = string(r[:len(r)-1])
		}
	case "ctrl+u":
		s.query = ""
	case "up":
		s.sel = max(s.sel-1, 0)
	case "down":
		s.sel = min(s.sel+1, max(len(s.results)-1, 0))
	case "pgdown":
		if s.sel == len(s.results)-1 && s.more && !s.loading {
			return m.askSearch(s.results[len(s.results)-1].ID)
		}
		s.sel = max(min(s.sel+m.timelineHeight()/2, len(s.results)-1), 0)
	case "pgup":
		s.sel = max(s.sel-m.timelineHeight()/2, 0)
	case "enter":
		q := strings.TrimSpace(s.query)
		if q == s.asked && len(s.results) > 0 && !s.loading {
			m.openResult(s.results[s.sel])
			return nil
		}
		if q == "" {
			return nil
		}
		return m.askSearch("")
	}
	return nil
}

// askSearch sends the search for the typed query; before (a message id)
// asks for the page after it.
func (m *Model) askSearch(before string) tea.Cmd {
	s := &m.search
	q := strings.TrimSpace(s.query)
	if len(q) > protocol.MaxQuery {
		s.err = fmt.Sprintf("the query is %d bytes; at most %d", len(q), protocol.MaxQuery)
		return nil
	}
	if before == "" {
		s.results, s.more, s.sel = nil, false, 0
	}
	s.ref, s.asked, s.loading, s.err = m.cfg.NewRef(), q, true, ""
	return m.cfg.send(protocol.Frame{Type: protocol.TypeSearch, Query: q, Before: before, Ref: s.ref})
}

// searchAnswered takes a results frame; answers to an older request (the
// agent has searched again since) are dropped.
func (m *Model) searchAnswered(f protocol.Frame) {
	s := &m.search
	if f.Ref != s.ref || !s.loading {
		return
	}
	s.results = append(s.results, f.List...)
	s.more, s.loading = f.More, false
}

// searchRefused takes an error frame that answers the search request and
// reports whether it did.
func (m *Model) searchRefused(f protocol.Frame) bool {
	s := &m.search
	if f.Ref == "" || f.Ref != s.ref || !s.loading {
		return false
	}
	s.loading, s.err = false, f.Text
	if s.err == "" {
		s.err = f.Code
	}
	return true
}

// searchNotSent reports a search frame the connection did not take.
func (m *Model) searchNotSent(f protocol.Frame, err error) bool {
	if f.Type != protocol.TypeSearch || f.Ref != m.search.ref {
		return false
	}
	m.search.loading, m.search.err = false, failText(err)
	return true
}

// openResult selects the result's conversation and closes the pane; a
// conversation the agent no longer holds is said so.
func (m *Model) openResult(r protocol.Message) {
	i, c := m.find(r.Phone)
	if c == nil {
		m.search.err = r.Phone + " is no longer yours"
		return
	}
	m.selectConv(i)
	m.search.open = false
}

// searchPane draws the search pane for a width of w and a height of h.
func (m *Model) searchPane(w, h int) []string {
	s := &m.search
	g := m.st.g
	caret, arrows := "▏", "↑↓"
	if m.cfg.ASCII {
		caret, arrows = "_", "up/down"
	}
	lines := []string{
		m.st.title.Render("Search your conversations: ") + clean(s.query, false) + m.st.selected.Render(caret),
		m.st.dim.Render("enter search/open" + g.sep + arrows + " choose" + g.sep + "esc close"),
	}
	var status string
	switch {
	case s.err != "":
		status = m.st.failed.Render(s.err)
	case s.loading:
		status = m.st.dim.Render("searching" + g.ellipsis)
	case s.asked == "":
		status = m.st.dim.Render("words, all of them, whole words; case does not matter")
	case len(s.results) == 0:
		status = m.st.dim.Render("no message of yours holds every word of " + clean(s.asked, false))
	default:
		more := ""
		if s.more {
			more = ", more with pgdn at the last"
		}
		noun := "results"
		if len(s.results) == 1 {
			noun = "result"
		}
		status = m.st.dim.Render(fmt.Sprintf("%d %s for %s%s", len(s.results), noun, clean(s.asked, false), more))
	}
	lines = append(lines, status)
	room := max(h-len(lines), 1)
	first := max(0, s.sel-room+1)
	for i := first; i < len(s.results) && len(lines) < h; i++ {
		lines = append(lines, m.resultLine(s.results[i], i == s.sel, w))
	}
	return lines
}

// resultLine is one result: cursor, phone, direction, age, text.
func (m *Model) resultLine(r protocol.Message, selected bool, w int) string {
	g := m.st.g
	cursor, phone := "  ", r.Phone
	if selected {
		cursor, phone = g.cursor+" ", m.st.selected.Render(r.Phone)
	}
	dir := m.st.in.Render(g.in)
	if r.Direction == protocol.Out {
		dir = m.st.out.Render(g.out)
	}
	when := m.st.dim.Render(m.cfg.RelTime.Phrase(time.UnixMilli(r.Received), m.now))
	text := strings.ReplaceAll(clean(r.Text, false), "\n", " ")
	return m.fit(cursor+phone+" "+dir+" "+when+g.sep+text, w)
}
