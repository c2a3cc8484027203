package agent

import (
	"fmt"
	"time"

	"github.com/switchboard/switchboard/agent/wsclient"
)

// statusBar is the top line: connection state, presence, conversation
// count, then the latest alert or notice.
func (m *Model) statusBar() string {
	g := m.st.g
	var conn string
	switch m.conn.kind {
	case wsclient.Connected:
		conn = m.st.ok.Render(g.online + " connected")
	case wsclient.Disconnected:
		left := m.conn.retryIn - m.now.Sub(m.conn.since)
		conn = m.st.barError.Render(fmt.Sprintf("%s disconnected, retrying in %s", g.offline, max(left, 0).Round(time.Second)))
	default:
		conn = m.st.dim.Render(g.offline + " connecting" + g.ellipsis)
	}
	presence := "available"
	if m.away {
		presence = "away"
	}
	s := m.st.bar.Render("switchboard") + g.sep + conn + g.sep + presence + g.sep + plural(len(m.convs), "conversation")
	switch {
	case m.notice != "":
		s += g.sep + m.st.barError.Render(clean(m.notice, false))
	case m.conn.kind == wsclient.Disconnected && m.conn.err != nil:
		s += g.sep + m.st.barError.Render(clean(m.conn.err.Error(), false))
	case m.alert != "":
		s += g.sep + clean(m.alert, false)
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
