package agent

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/charmbracelet/x/ansi"
)

// Layout, top to bottom: status bar (1 line); body = conversation list and
// stats pane on the left, timeline on the right; composer label (1) and
// composer (composerLines); help line (1).
const (
	composerLines = 3
	statsLines    = 5 // the stats pane's least height; it grows to a third of the body
	chromeLines   = 1 + 1 + composerLines + 1
)

// layout sizes the components after a resize.
func (m *Model) layout() {
	m.input.SetWidth(max(m.width-2, 10))
	m.input.SetHeight(composerLines)
}

func (m *Model) bodyHeight() int { return max(m.height-chromeLines-len(m.banner()), 4) }

func (m *Model) leftWidth() int { return min(max(m.width/3, 20), 36) }

func (m *Model) rightWidth() int { return max(m.width-m.leftWidth()-1, 10) }

func (m *Model) timelineHeight() int { return m.bodyHeight() - 1 }

// leftSplit divides the left column of height h: the conversation list
// gets what it needs, up to all but a third of the column (at least
// statsLines) kept for the stats pane, which also takes what the list
// leaves.
func (m *Model) leftSplit(h int) (listH, statsH int) {
	want := 2 // title and "waiting for customers"
	if n := len(m.convs); n > 0 {
		want = 1 + 3*n
	}
	listH = max(min(want, h-max(statsLines, h/3)), min(want, h, 4))
	return listH, h - listH
}

// View renders the whole screen, with the terminal's cursor in the
// composer. It only reads the model.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = m.cfg.AltScreen
	if c := m.input.Cursor(); c != nil && !m.search.open { // the search pane draws its own
		// The composer's lines sit above the help line.
		c.Position.Y += m.height - 1 - composerLines
		v.Cursor = c
	}
	return v
}

// render draws the screen's content.
func (m *Model) render() string {
	var b strings.Builder
	b.Grow(m.width * m.height * 2)
	b.WriteString(m.fit(m.statusBar(), m.width))
	b.WriteByte('\n')
	for _, l := range m.banner() {
		b.WriteString(m.fit(l, m.width))
		b.WriteByte('\n')
	}

	h := m.bodyHeight()
	left := make([]string, 0, h)
	listH, statsH := m.leftSplit(h)
	left = append(left, m.convList(m.leftWidth(), listH)...)
	left = left[:min(len(left), listH)]
	for len(left) < listH {
		left = append(left, "")
	}
	left = append(left, m.statsPane(m.leftWidth(), statsH)...)
	if m.showHelp {
		// The help takes the whole body: every key shows even at 80x24.
		help := m.helpPane(m.width, h)
		for i := 0; i < h; i++ {
			b.WriteString(m.fit(at(help, i), m.width))
			b.WriteByte('\n')
		}
		left = nil
	}
	var right []string
	switch {
	case m.showHelp:
		right = nil // drawn over the whole body above
	case m.search.open:
		right = m.searchPane(m.rightWidth(), h)
	case m.desk.picking:
		right = m.cannedPane(m.rightWidth(), h)
	default:
		right = m.timeline(m.rightWidth(), h)
	}
	bar := m.st.sep.Render(m.st.g.vbar)
	for i := 0; i < h && !m.showHelp; i++ {
		b.WriteString(m.fit(at(left, i), m.leftWidth()))
		b.WriteString(bar)
		b.WriteString(m.fit(at(right, i), m.rightWidth()))
		b.WriteByte('\n')
	}
	b.WriteString(m.fit(m.composerLabel(m.width), m.width))
	b.WriteByte('\n')
	b.WriteString(m.inputView.get(inputKey(&m.input), m.input.View))
	b.WriteByte('\n')
	b.WriteString(m.hintView.get(fmt.Sprint(m.width), func() string { return m.fit(m.hint(m.width), m.width) }))
	return b.String()
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return ""
}

// fit cuts or pads s (which may hold styles) to exactly w cells. A cut is
// always marked with the ellipsis, so that a cut text (a phone number) is
// never taken for a whole one.
func (m *Model) fit(s string, w int) string {
	n := ansi.StringWidth(s)
	if n > w {
		s = ansi.Truncate(s, w, m.st.g.ellipsis)
		n = ansi.StringWidth(s)
	}
	if n < w {
		s += strings.Repeat(" ", w-n)
	}
	return s
}

// clean makes outside text safe to draw: control characters (an SMS may hold
// escape sequences) become U+FFFD, tabs become spaces. Newlines stay when
// keepNL is set.
func clean(s string, keepNL bool) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			ok = false
			break
		}
	}
	if ok && !strings.ContainsRune(s, '\u009b') {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' && keepNL:
			return r
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return '\uFFFD'
		}
		return r
	}, s)
}
