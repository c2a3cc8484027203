package agent

import (
	"strings"

	"charm.land/bubbles/v2/key"
	"github.com/charmbracelet/x/ansi"
)

// keyMap is every key the client reacts to, in one place. The composer always
// has focus, so actions use keys that never type text: Enter, Tab, Ctrl, Alt,
// PgUp/PgDn and function keys. "?" opens the help only while the composer is
// empty, so that a customer can still be asked a question.
//
// Bindings match key presses only, never text: a press that types text
// (see typed) goes to the composer as text whatever it spells, so the word
// "enter" arriving in one read of the terminal is five letters, not Send.
type keyMap struct {
	Send       key.Binding
	Newline    key.Binding
	Next       key.Binding
	Prev       key.Binding
	PageUp     key.Binding
	PageDown   key.Binding
	LineUp     key.Binding
	LineDown   key.Binding
	Presence   key.Binding
	Release    key.Binding
	Transfer   key.Binding
	Retry      key.Binding
	Reconnect  key.Binding
	Search     key.Binding
	Help       key.Binding
	HelpAlways key.Binding
	Close      key.Binding
	Quit       key.Binding
	// desk.go
	Note   key.Binding
	Canned key.Binding
	Name   key.Binding
}

func defaultKeyMap() keyMap {
	return keyMap{
		Send:       key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send")),
		Newline:    key.NewBinding(key.WithKeys("shift+enter", "alt+enter"), key.WithHelp("shift/alt+enter", "newline")),
		Next:       key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next conversation")),
		Prev:       key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous conversation")),
		PageUp:     key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "older (loads history)")),
		PageDown:   key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "newer")),
		LineUp:     key.NewBinding(key.WithKeys("alt+up"), key.WithHelp("alt+↑", "scroll up")),
		LineDown:   key.NewBinding(key.WithKeys("alt+down"), key.WithHelp("alt+↓", "scroll down")),
		Presence:   key.NewBinding(key.WithKeys("ctrl+t"), key.WithHelp("ctrl+t", "available/away")),
		Release:    key.NewBinding(key.WithKeys("ctrl+x"), key.WithHelp("ctrl+x", "release conversation")),
		Transfer:   key.NewBinding(key.WithKeys("ctrl+g"), key.WithHelp("ctrl+g", "transfer (agent/line)")),
		Retry:      key.NewBinding(key.WithKeys("ctrl+r"), key.WithHelp("ctrl+r", "retry failed reply")),
		Reconnect:  key.NewBinding(key.WithKeys("f5"), key.WithHelp("f5", "reconnect now")),
		Search:     key.NewBinding(key.WithKeys("ctrl+f"), key.WithHelp("ctrl+f", "search")),
		Help:       key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		HelpAlways: key.NewBinding(key.WithKeys("f1"), key.WithHelp("f1", "help")),
		Close:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "close help")),
		Quit:       key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		Note:       key.NewBinding(key.WithKeys("ctrl+n"), key.WithHelp("ctrl+n", "internal note mode")),
		Canned:     key.NewBinding(key.WithKeys("ctrl+l"), key.WithHelp("ctrl+l", "canned replies (/name tab)")),
		Name:       key.NewBinding(key.WithKeys("alt+n"), key.WithHelp("alt+n", "name the customer")),
	}
}

// ShortHelp is the one-line help under the composer, most useful first;
// hint always ends it with Help and Quit.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Send, k.Next, k.PageUp, k.Presence, k.Retry, k.Search}
}

// hint renders the one-line help for a width of w: as many of the short
// help's keys as fit, then, always, how to open the help and how to quit.
func (m *Model) hint(w int) string {
	item := func(b key.Binding) string { return b.Help().Key + " " + m.st.dim.Render(b.Help().Desc) }
	sep := m.st.g.sep
	tail := item(m.keys.Help) + sep + item(m.keys.Quit)
	var b strings.Builder
	for _, k := range m.keys.ShortHelp() {
		s := item(k) + sep
		if ansi.StringWidth(b.String())+ansi.StringWidth(s)+ansi.StringWidth(tail) > w {
			break
		}
		b.WriteString(s)
	}
	return b.String() + tail
}

// FullHelp is the help screen.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Send, k.Newline, k.Retry},
		{k.Next, k.Prev, k.Release, k.Transfer, k.Search},
		{k.PageUp, k.PageDown, k.LineUp, k.LineDown},
		{k.Note, k.Canned, k.Name},
		{k.Presence, k.Reconnect, k.Help, k.HelpAlways, k.Close, k.Quit},
	}
}
