package agent

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// convList renders the conversation list, three lines per conversation,
// scrolled so that the selected one is visible:
//
//	▸ +15551234567  2 NEW
//	  🙂 Hi, my order hasn't arrived…
//	  45 seconds ago
func (m *Model) convList(w, h int) []string {
	g := m.st.g
	lines := []string{m.st.title.Render(fmt.Sprintf("Conversations (%d)", len(m.convs)))}
	if len(m.convs) == 0 {
		return append(lines, m.st.dim.Render("waiting for customers"+g.ellipsis))
	}
	per := max((h-1)/3, 1)
	first := max(0, m.sel-per+1)
	for i := first; i < len(m.convs) && i < first+per; i++ {
		c := m.convs[i]
		cursor := "  "
		head := shownAddr(c.phone)
		if i == m.sel {
			cursor = g.cursor + " "
			head = m.st.selected.Render(head)
		} else if c.fresh {
			head = m.st.fresh.Render(head)
		}
		// The phone is never cut for a badge: badges that do not fit go.
		var badges []string
		if mark := m.channelMark(c); mark != "" {
			badges = append(badges, " "+mark)
		}
		if c.optedOut() {
			badges = append(badges, " "+m.st.failed.Render("STOP"))
		}
		if c.unread > 0 {
			badges = append(badges, " "+m.st.unread.Render(fmt.Sprintf("(%d)", c.unread)))
		}
		if c.fresh {
			badges = append(badges, " "+m.st.fresh.Render("NEW"))
		}
		for _, b := range badges {
			if ansi.StringWidth(cursor+head+b) <= w {
				head += b
			}
		}
		preview, when := "", ""
		mark := g.mark(c.lastMark())
		if e := c.last(); e != nil {
			dir := ""
			if e.Message.Direction == protocol.Out {
				dir = author(e) + ": "
			}
			text := strings.ReplaceAll(clean(e.Message.Text, false), "\n", " ")
			if text == "" && len(e.Message.Media) > 0 {
				text = g.media + " " + clean(e.Message.Media[0].ContentType, false)
			}
			preview = ansiTrunc(dir+text, w-2-ansi.StringWidth(mark)-1, g.ellipsis)
			when = m.cfg.RelTime.Phrase(e.Time, m.now)
		}
		lines = append(lines, cursor+head, "  "+mark+" "+preview, "  "+m.st.dim.Render(when))
	}
	return lines
}
