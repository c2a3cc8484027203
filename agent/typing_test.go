package agent

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textarea"
	tea "charm.land/bubbletea/v2"

	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// bindingNames returns every key name bound by v, a struct of key.Bindings
// (our keyMap or the textarea's KeyMap).
func bindingNames(t *testing.T, v any) []string {
	t.Helper()
	var names []string
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		b, ok := rv.Field(i).Interface().(key.Binding)
		if !ok {
			t.Fatalf("%s.%s is not a key.Binding", rv.Type(), rv.Type().Field(i).Name)
		}
		names = append(names, b.Keys()...)
	}
	if len(names) < 10 {
		t.Fatalf("only %d key names in %s", len(names), rv.Type())
	}
	return names
}

// keyNameText is a reply made of every key name the client or its
// textarea binds, with "enter" and "tab" alone and inside words. It starts
// with a word, so "?" is typed into a composer that is not empty.
func keyNameText(t *testing.T) string {
	t.Helper()
	words := []string{"We are on it right now, turn left then up, press enter or tab:"}
	words = append(words, bindingNames(t, defaultKeyMap())...)
	words = append(words, bindingNames(t, textarea.DefaultKeyMap())...)
	words = append(words, "entertain", "tablet", "re-enter", "enter", "tab", "home", "end", "ctrl+c", "esc", "done")
	return strings.Join(words, " ")
}

// TestTypedKeyNamesAreText types text made of key names into the composer
// the ways it reaches the program: one press per rune (what Bubble Tea v2
// decodes from one read), one press per word (an IME committing words),
// and one press for all of it. The composer holds exactly the text,
// nothing is sent, the program does not quit, and Enter sends it whole.
func TestTypedKeyNamesAreText(t *testing.T) {
	text := keyNameText(t)
	for _, tc := range []struct {
		name   string
		chunks func() []string
	}{
		{"rune by rune", func() []string { return strings.Split(text, "") }},
		{"word by word", func() []string {
			var out []string
			for i, w := range strings.Split(text, " ") {
				if i > 0 {
					out = append(out, " ")
				}
				out = append(out, w)
			}
			return out
		}},
		{"one chunk", func() []string { return []string{text} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, false)
			assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
			for _, c := range tc.chunks() {
				_, cmd := f.m.Update(tea.KeyPressMsg{Code: []rune(c)[0], Text: c})
				if cmd != nil && cmd() == tea.Quit() {
					t.Fatalf("typing %q quits", c)
				}
				f.run(cmd)
			}
			if got := f.m.input.Value(); got != text {
				t.Fatalf("composer holds\n%q\nwant\n%q", got, text)
			}
			if s := f.conn.sent(); len(s) != 0 {
				t.Fatalf("sent before enter: %+v", s)
			}
			if f.m.showHelp || f.m.sel != 0 || f.m.away {
				t.Fatalf("typing acted: help=%v sel=%d away=%v", f.m.showHelp, f.m.sel, f.m.away)
			}
			f.key("enter")
			if s := f.conn.sent(); len(s) != 1 || s[0].Message != text {
				t.Fatalf("enter sent %+v, want one reply of the whole text", s)
			}
		})
	}
}

// TestTypedKeyNamesThroughTheProgram writes the key-name text and a
// carriage return to a real Bubble Tea program in one write, so that its
// input decoder reads them together (as from tmux or a laggy SSH session):
// exactly one reply goes out, and it is the whole text.
func TestTypedKeyNamesThroughTheProgram(t *testing.T) {
	text := keyNameText(t)
	conn := &recConn{}
	m, err := NewModel(Config{Conn: conn, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m.handleFrame(protocol.Frame{Type: protocol.TypeAssigned, Phone: p1, List: []protocol.Message{msg("a1", p1, protocol.In, "hello", time.Minute)}})
	in, w := io.Pipe()
	p := tea.NewProgram(m, tea.WithInput(in), tea.WithOutput(io.Discard), tea.WithWindowSize(100, 30), tea.WithoutSignals())
	done := make(chan error, 1)
	go func() { _, err := p.Run(); done <- err }()
	if _, err := io.WriteString(w, text+"\r"); err != nil {
		t.Fatal(err)
	}
	sbt.WaitFor(t, 30*time.Second, "the reply", func() bool { return len(conn.sent()) > 0 })
	p.Quit()
	if err := <-done; err != nil {
		t.Fatalf("program: %v", err)
	}
	w.Close()
	if s := conn.sent(); len(s) != 1 || s[0].Type != protocol.TypeResponse || s[0].Message != text {
		t.Fatalf("sent %+v, want one reply of\n%q", s, text)
	}
}

// TestShiftEnterInsertsNewline: where the terminal tells Shift+Enter from
// Enter, it adds a line like Alt+Enter; Enter still sends.
func TestShiftEnterInsertsNewline(t *testing.T) {
	for _, nl := range []string{"shift+enter", "alt+enter"} {
		t.Run(nl, func(t *testing.T) {
			f := newFixture(t, false)
			assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
			f.key("a")
			f.key(nl)
			f.key("b")
			if got := f.m.input.Value(); got != "a\nb" {
				t.Fatalf("composer = %q", got)
			}
			if len(f.conn.sent()) != 0 {
				t.Fatalf("%s sent the reply", nl)
			}
			f.key("enter")
			if s := f.conn.sent(); len(s) != 1 || s[0].Message != "a\nb" {
				t.Fatalf("sent %+v", s)
			}
		})
	}
}
