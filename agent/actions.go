package agent

import (
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/transform"
)

// The agent's actions: what key presses do.

// handleKey handles one key press. Text is text (see typed): of the
// bindings only "?" is a character, and it opens or closes the help only
// while the composer is empty.
func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	if m.search.open && !key.Matches(k, m.keys.Quit) {
		return m.searchKey(k) // search.go
	}
	if text, ok := typed(k); ok {
		if key.Matches(k, m.keys.Help) && m.input.Value() == "" {
			m.showHelp = !m.showHelp
			return nil
		}
		return m.typeText(text)
	}
	m.notice = "" // a new action: the last one's notice is stale
	if m.flow.step > 0 {
		if cmd, done := m.transferKey(k); done {
			return cmd
		}
	}
	if cmd, ok := m.deskKey(k); ok {
		return cmd
	}
	switch {
	case key.Matches(k, m.keys.Quit):
		return tea.Quit
	case m.showHelp && (key.Matches(k, m.keys.Close) || key.Matches(k, m.keys.HelpAlways)):
		m.showHelp = false
		return nil
	case key.Matches(k, m.keys.HelpAlways):
		m.showHelp = true
		return nil
	case key.Matches(k, m.keys.Search):
		m.showHelp = false
		m.toggleSearch()
		return nil
	case key.Matches(k, m.keys.Next):
		m.selectConv(m.sel + 1)
		return nil
	case key.Matches(k, m.keys.Prev):
		m.selectConv(m.sel - 1)
		return nil
	case key.Matches(k, m.keys.Presence):
		m.away = !m.away
		away, conn := m.away, m.cfg.Conn
		return func() tea.Msg {
			if err := conn.SetPresence(away); err != nil && !errors.Is(err, wsclient.ErrNotConnected) {
				return sendResultMsg{frame: protocol.Frame{Type: protocol.TypeAway}, err: err}
			}
			return nil // when disconnected, the presence is sent on reconnect
		}
	case key.Matches(k, m.keys.Transfer):
		return m.startTransfer()
	case key.Matches(k, m.keys.Release):
		if c := m.selected(); c != nil {
			return m.cfg.send(protocol.Frame{Type: protocol.TypeRelease, Phone: c.phone})
		}
		return nil
	case key.Matches(k, m.keys.Retry):
		return m.retry()
	case key.Matches(k, m.keys.Reconnect):
		if m.conn.kind != wsclient.Disconnected && m.conn.kind != wsclient.Replaced {
			return nil
		}
		conn := m.cfg.Conn
		return func() tea.Msg { conn.Reconnect(); return nil }
	case key.Matches(k, m.keys.PageUp):
		return m.scroll(max(m.timelineHeight()/2, 1))
	case key.Matches(k, m.keys.PageDown):
		return m.scroll(-max(m.timelineHeight()/2, 1))
	case key.Matches(k, m.keys.LineUp):
		return m.scroll(1)
	case key.Matches(k, m.keys.LineDown):
		return m.scroll(-1)
	case key.Matches(k, m.keys.Send):
		return m.sendReply()
	case key.Matches(k, m.keys.Newline):
		m.input.InsertString("\n")
		return nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return cmd
}

func (m *Model) selectConv(i int) {
	n := len(m.convs)
	if n == 0 {
		return
	}
	m.sel = ((i % n) + n) % n
	c := m.convs[m.sel]
	c.unread, c.fresh = 0, false
}

// scroll moves the selected timeline by n messages (positive: older) and asks
// for older history once the oldest loaded message is on screen.
func (m *Model) scroll(n int) tea.Cmd {
	c := m.selected()
	if c == nil {
		return nil
	}
	c.offset = min(max(c.offset+n, 0), max(len(c.msgs)-1, 0))
	c.newBelow = min(c.newBelow, c.offset)
	// Past the top the page stays full, the oldest message at its top,
	// instead of showing it alone above an empty pane.
	h, w := m.timelineHeight()-1, m.rightWidth() // one line says "beginning of the conversation"
	for c.offset > 0 && m.linesUpTo(c, len(c.msgs)-c.offset, w, h) <= h {
		c.offset--
	}
	if n <= 0 || !c.more || c.loading || len(c.msgs) == 0 || m.firstVisible(c) > 0 {
		return nil
	}
	before := c.oldestID()
	if before == "" {
		return nil
	}
	c.loading = true
	return m.cfg.send(protocol.Frame{Type: protocol.TypeHistory, Phone: c.phone, Before: before, Limit: m.cfg.HistoryPage})
}

// linesUpTo counts the timeline lines of messages 0..last at width w,
// stopping once the count passes limit.
func (m *Model) linesUpTo(c *conversation, last, w, limit int) int {
	n := 0
	for i := 0; i <= last && i < len(c.msgs) && n <= limit; i++ {
		n += len(m.renderEntry(c.msgs[i], w))
	}
	return n
}

func (m *Model) sendReply() tea.Cmd {
	c := m.selected()
	text := strings.TrimSpace(m.input.Value())
	if c == nil || text == "" {
		if c == nil && text != "" {
			m.setNotice("no conversation to reply to")
		}
		return nil
	}
	if m.desk.noteMode {
		return m.sendNote(c, text)
	}
	if n := smsCount(text); n.chars > maxSMSChars {
		m.setNotice(fmt.Sprintf("reply too long for an SMS: %d characters, at most %d", n.chars, maxSMSChars))
		return nil
	}
	if len(text) > protocol.MaxText {
		m.setNotice(fmt.Sprintf("reply too long: %d bytes, at most %d", len(text), protocol.MaxText))
		return nil
	}
	ref := m.cfg.NewRef()
	now := m.cfg.Now()
	msg := protocol.Message{Phone: c.phone, Direction: protocol.Out, Text: text, Received: now.UnixMilli()}
	e := &entry{Annotated: transform.Annotate(msg), ref: ref, pending: true}
	e.Sentiment = m.cfg.Analyzer.Score(text)
	c.msgs = append(c.msgs, e)
	c.offset, c.newBelow = 0, 0
	m.input.Reset()
	return m.cfg.send(protocol.Frame{Type: protocol.TypeResponse, Phone: c.phone, Message: text, Ref: ref})
}

func (m *Model) retry() tea.Cmd {
	c := m.selected()
	if c == nil {
		return nil
	}
	e := c.lastFailed()
	if e == nil {
		return nil
	}
	e.failed, e.pending = "", true
	if e.Message.Direction == protocol.Note {
		return m.cfg.send(noteFrame(c.phone, e.Message.Text, e.ref))
	}
	return m.cfg.send(protocol.Frame{Type: protocol.TypeResponse, Phone: c.phone, Message: e.Message.Text, Ref: e.ref})
}
