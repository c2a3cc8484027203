package agent

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/switchboard/switchboard/agent/wsclient"
)

// statusBar is the top line: connection state, presence, conversation
// count, how many customers wait for an agent, then the latest notice or
// alert.
func (m *Model) statusBar() string {
	g := m.st.g
	var conn string
	switch m.conn.kind {
	case wsclient.Connected:
		conn = m.st.ok.Render(g.online + " connected")
	case wsclient.Disconnected:
		left := m.conn.retryIn - m.now.Sub(m.conn.since)
		conn = m.st.barError.Render(fmt.Sprintf("%s disconnected, retrying in %s (f5 now)", g.offline, max(left, 0).Round(time.Second)))
	case wsclient.Refused:
		conn = m.st.barError.Render(g.offline + " token refused")
	case wsclient.Replaced:
		conn = m.st.barError.Render(g.offline + " signed in elsewhere (f5 takes over)")
	default:
		conn = m.st.dim.Render(g.offline + " connecting" + g.ellipsis)
	}
	presence := "available"
	if m.away {
		presence = "away"
	}
	s := m.st.bar.Render("switchboard") + g.sep + conn + g.sep + presence + g.sep + plural(len(m.convs), "conversation")
	if q := m.queue; q.known && q.waiting > 0 {
		s += g.sep + m.st.fresh.Render(fmt.Sprintf("%d waiting, longest %s", q.waiting, shortDuration(q.longest+m.now.Sub(q.at))))
	}
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

// banner is what must be read in full, on lines of its own under the
// status bar: the node refused the token, so the client has stopped and
// the agent needs a new token; or the agent signed in elsewhere and F5
// takes it back.
func (m *Model) banner() []string {
	if m.expired && m.conn.kind == wsclient.Disconnected {
		return m.bannerLines("Your token expired, so the node closed the session. Get a fresh token with `switchboard token NAME` and start the agent again with it: within the grace period you keep your conversations.")
	}
	if m.conn.kind == wsclient.Replaced {
		return m.bannerLines("You signed in elsewhere (another client of the same agent connected), so the node closed this session and this client stopped reconnecting. Press F5 to take over here; the other place is then closed.")
	}
	if m.conn.kind != wsclient.Refused {
		return nil
	}
	why := wsclient.ErrTokenRefused.Error()
	if m.conn.err != nil {
		why = clean(m.conn.err.Error(), false)
		if i := strings.Index(why, wsclient.ErrTokenRefused.Error()); i >= 0 {
			why = why[i:] // "token refused (401): <the node's reason>"
		}
	}
	return m.bannerLines(why + ". The node refused the token, so the client stopped trying: get a new token with `switchboard token NAME` and start the agent again with -token.")
}

// bannerLines wraps text to the width, in the failure style.
func (m *Model) bannerLines(text string) []string {
	lines := strings.Split(ansi.Wrap(text, max(m.width, 20), ""), "\n")
	for i, l := range lines {
		lines[i] = m.st.failed.Render(l)
	}
	return lines
}

// shortDuration is a wait as an agent reads it: "45s", "2m05s", "1h02m".
func shortDuration(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
