package agent

import (
	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/textarea"
	"github.com/charmbracelet/x/ansi"
)

// newComposer builds the reply box. Enter is the send key, so the textarea's
// own newline binding moves to Alt+Enter (handled by the model).
func newComposer() textarea.Model {
	t := textarea.New()
	t.Placeholder = "Type a reply"
	t.ShowLineNumbers = false
	t.Prompt = "  "
	t.CharLimit = 0
	t.KeyMap.InsertNewline.SetEnabled(false)
	t.FocusedStyle.CursorLine = t.FocusedStyle.Base
	// A steady cursor: a blinking one would redraw the screen twice a second
	// for nothing, which is most of an idle client's CPU.
	t.Cursor.SetMode(cursor.CursorStatic)
	t.Focus()
	return t
}

func (m *Model) composerLabel() string {
	c := m.selected()
	if c == nil {
		return m.st.dim.Render("No conversation yet")
	}
	return m.st.composerOn.Render("Reply to "+c.phone) + m.st.dim.Render("  (enter sends, alt+enter adds a line)")
}

func (m *Model) helpPane(w, h int) []string {
	lines := []string{m.st.title.Render("Keys"), ""}
	for _, group := range m.keys.FullHelp() {
		for _, k := range group {
			lines = append(lines, "  "+fit(k.Help().Key, 12)+k.Help().Desc)
		}
		lines = append(lines, "")
	}
	lines = append(lines, m.st.dim.Render("esc closes this help"))
	return lines
}

func ansiTrunc(s string, w int, tail string) string {
	if w <= 0 {
		return ""
	}
	return ansi.Truncate(s, w, tail)
}
