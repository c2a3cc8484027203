package agent

import (
	"fmt"
	"slices"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textarea"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// composerMaxLines is the most lines the composer takes.
const composerMaxLines = 40

// newComposer builds the reply box. Enter is the send key, so the textarea's
// own newline binding is off; Shift+Enter and Alt+Enter (handled by the
// model) add a line. The cursor is the terminal's own (placed by View), so
// an IME composes where the agent types and nothing redraws to blink it.
func newComposer() textarea.Model {
	t := textarea.New()
	t.Placeholder = "Type a reply"
	t.ShowLineNumbers = false
	t.Prompt = "  "
	t.CharLimit = 0
	// The composer shows composerLines rows; MaxHeight bounds the lines an
	// agent can type (bubbles' default is 99, and its line cache is sized
	// by it). An SMS is at most 1,600 characters (10 segments), which
	// wraps to about 25 lines of 70: composerMaxLines is room for that.
	t.MaxHeight = composerMaxLines
	t.KeyMap.InsertNewline.SetEnabled(false)
	s := t.Styles()
	s.Focused.CursorLine = s.Focused.Base
	s.Cursor.Blink = false
	t.SetStyles(s)
	t.SetVirtualCursor(false)
	t.Focus()
	return t
}

// typed returns the text a key press types, if it types any: a press that
// carries text with no modifier but Shift (and the lock keys). Such a press
// is text, never a binding, whatever it spells. Bubble Tea v2 already
// delivers the runes of one read as one press each, but an IME commits a
// whole word as one press with the word as its text, and a v1 KeyRunes
// message used to print as its text: "right" or "enter" typed quickly
// matched the bindings of those names. Text therefore reaches the textarea
// as a paste, which it inserts without looking at its keymap.
func typed(k tea.KeyPressMsg) (string, bool) {
	if k.Text == "" || k.Mod&^(tea.ModShift|tea.ModCapsLock|tea.ModNumLock) != 0 {
		return "", false
	}
	return k.Text, true
}

// typeText inserts text into the composer as text.
func (m *Model) typeText(text string) tea.Cmd {
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(tea.PasteMsg{Content: text})
	return cmd
}

// composerLabel is the line above the composer, for a width of w: who the
// reply goes to, its SMS length once something is typed (in the error
// style past what Twilio accepts), and, if there is room, how to send.
func (m *Model) composerLabel(w int) string {
	c := m.selected()
	if m.flow.step > 0 {
		return m.transferLabel()
	}
	if c == nil {
		return m.st.dim.Render("No conversation yet")
	}
	s := m.st.composerOn.Render("Reply to " + c.label())
	if m.desk.noteMode {
		s = m.st.note.Render("Note on "+c.label()) + m.st.dim.Render(" (agents only, never sent; "+m.keys.Note.Help().Key+" back to replying)")
	} else if text := m.input.Value(); text != "" {
		n := smsCount(text)
		if n.chars > maxSMSChars {
			s += "  " + m.st.failed.Render(fmt.Sprintf("%d chars: too long for an SMS (at most %d)", n.chars, maxSMSChars))
		} else {
			s += "  " + m.st.dim.Render(n.label(m.st.g.sep))
		}
	}
	if how := m.st.dim.Render("  (enter sends, shift/alt+enter adds a line)"); ansi.StringWidth(s+how) <= w {
		s += how
	}
	return s
}

func (m *Model) helpPane(w, h int) []string {
	var all []key.Binding
	for _, group := range m.keys.FullHelp() {
		all = append(all, group...)
		all = append(all, key.Binding{}) // a blank line between groups
	}
	line := func(k key.Binding, kw int) string {
		if k.Help().Key == "" {
			return ""
		}
		return "  " + m.fit(k.Help().Key, kw) + k.Help().Desc
	}
	keys := make([]string, len(all))
	for i, k := range all {
		keys[i] = line(k, 17)
	}
	head := []string{m.st.title.Render("Keys"), ""}
	tail := m.st.dim.Render("esc closes this help")
	if len(head)+len(keys)+1 <= h {
		return append(append(head, keys...), tail)
	}
	// Short terminal: no blank lines between the groups, and in two
	// columns when one is still too long.
	keys = slices.DeleteFunc(keys, func(l string) bool { return l == "" })
	all = slices.DeleteFunc(all, func(k key.Binding) bool { return k.Help().Key == "" })
	head = head[:1]
	if rows := h - len(head) - 1; len(keys) > rows && rows > 0 {
		half := (len(all) + 1) / 2
		// Each column's keys are as wide as its widest, so descriptions
		// keep the room.
		width := func(ks []key.Binding) int {
			kw := 0
			for _, k := range ks {
				kw = max(kw, ansi.StringWidth(k.Help().Key)+1)
			}
			return kw
		}
		left, right := all[:half], all[half:]
		lw, rw := width(left), width(right)
		col := w / 2
		two := make([]string, 0, half)
		for i := range left {
			l := m.fit(line(left[i], lw), col)
			if i < len(right) {
				l += m.fit(line(right[i], rw), w-col)
			}
			two = append(two, l)
		}
		keys = two
	}
	return append(append(head, keys...), tail)
}

func ansiTrunc(s string, w int, tail string) string {
	if w <= 0 {
		return ""
	}
	return ansi.Truncate(s, w, tail)
}
