package agent

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
)

// lastTimelineText is the text of the bottom message on screen.
func lastTimelineText(t *testing.T, f *fixture) string {
	t.Helper()
	rows, _ := f.m.rows(f.m.selected(), f.m.rightWidth(), f.m.timelineHeight())
	for i := len(rows) - 1; i >= 0; i-- {
		if r := strings.TrimSpace(ansi.Strip(rows[i])); strings.HasPrefix(r, "message ") {
			return r
		}
	}
	t.Fatalf("no message on screen:\n%s", f.view())
	return ""
}

// A timeline scrolled back stays where the reader put it while messages
// arrive, and says how many are new below.
func TestScrolledBackStaysAndCountsNew(t *testing.T) {
	f := newFixture(t, false)
	var list []protocol.Message
	for i := range 30 {
		list = append(list, msg(fmt.Sprintf("a%02d", i), p1, protocol.In, fmt.Sprintf("message %d", i), time.Duration(60-i)*time.Minute))
	}
	assign(f, p1, list...)
	f.frame(protocol.Frame{Type: protocol.TypeHistory, Phone: p1, More: false})
	f.key("pgup")
	before := lastTimelineText(t, f)
	if before == "message 29" {
		t.Fatal("pgup did not scroll back")
	}
	for i := range 3 {
		f.frame(protocol.Frame{Type: protocol.TypeUpdate, Phone: p1, List: []protocol.Message{msg(fmt.Sprintf("b%d", i), p1, protocol.In, fmt.Sprintf("message new %d", i), 0)}})
		if got := lastTimelineText(t, f); got != before {
			t.Fatalf("after %d arrivals the view moved from %q to %q", i+1, before, got)
		}
	}
	if v := f.view(); !strings.Contains(v, "scrolled back, 3 new below (pgdn)") {
		t.Fatalf("header does not count the new messages:\n%s", v)
	}
	for range 20 {
		f.key("pgdown")
	}
	if v := f.view(); strings.Contains(v, "scrolled back") || !strings.Contains(v, "message new 2") {
		t.Fatalf("back at the bottom the view still says scrolled back or lacks the new messages:\n%s", v)
	}
	f.key("pgup") // scrolled back again: nothing new below yet
	if v := f.view(); strings.Contains(v, "new below") {
		t.Fatalf("old arrivals counted again:\n%s", v)
	}
}

// The list previews a reply with its author: "you" for this client's, the
// agent's name for another agent's.
func TestPreviewNamesTheAuthor(t *testing.T) {
	f := newFixture(t, false)
	other := msg("a2", p1, protocol.Out, "Bob here, on it", time.Minute)
	other.Agent = "bob"
	assign(f, p1, msg("a1", p1, protocol.In, "hello", 2*time.Minute), other)
	if v := f.view(); !strings.Contains(v, "bob: Bob here") || strings.Contains(v, "you: Bob here") {
		t.Fatalf("another agent's reply is not previewed as theirs:\n%s", v)
	}
	f.m.input.SetValue("Mine now")
	f.key("enter")
	if v := f.view(); !strings.Contains(v, "you: Mine now") {
		t.Fatalf("own reply not previewed as yours:\n%s", v)
	}
}

// Every cut is marked, a phone number is never cut to make room for a
// badge, an ASCII mark keeps the preview's ellipsis, and the help hint
// survives at 80 columns.
func TestCutsAreMarked(t *testing.T) {
	for _, ascii := range []bool{false, true} {
		t.Run(fmt.Sprintf("ascii=%v", ascii), func(t *testing.T) {
			const long = "+1555888800000"
			f := newFixture(t, ascii)
			ell := f.m.st.g.ellipsis
			assign(f, p1, msg("a1", p1, protocol.In, "first", time.Minute))
			var list []protocol.Message
			for i := range 12 {
				list = append(list, msg(fmt.Sprintf("b%02d", i), long, protocol.In, "This is ridiculous, worst service ever, I want my money back now", time.Minute))
			}
			assign(f, long, list...)
			f.frame(protocol.Frame{Type: protocol.TypeAlert, Text: "A very long alert from the node that cannot possibly fit in the status bar at eighty columns"})
			for _, w := range []int{80, 60} {
				f.update(teaSize(w, 24))
				v := f.view()
				lines := strings.Split(v, "\n")
				if !strings.Contains(v, long) {
					t.Fatalf("width %d: the phone %s is cut:\n%s", w, long, v)
				}
				if !strings.HasSuffix(strings.TrimRight(lines[0], " "), ell) {
					t.Fatalf("width %d: the cut status bar is not marked with %q: %q", w, ell, lines[0])
				}
				if !strings.HasSuffix(strings.TrimRight(lines[len(lines)-1], " "), "? help"+f.m.st.g.sep+"ctrl+c quit") {
					t.Fatalf("width %d: the help hint lost its end: %q", w, lines[len(lines)-1])
				}
				for _, l := range lines {
					left := ansi.Truncate(l, f.m.leftWidth(), "")
					if strings.Contains(left, "This is ridiculous") && !strings.HasSuffix(strings.TrimRight(left, " "), ell) {
						t.Fatalf("width %d: cut preview without a mark: %q", w, left)
					}
				}
			}
		})
	}
}

// A notice lasts until the agent's next action (or noticeTTL), and a
// release does not say "released" twice.
func TestNoticeDoesNotGoStale(t *testing.T) {
	f := newFixture(t, false)
	assign(f, p1, msg("a1", p1, protocol.In, "one", time.Minute))
	assign(f, p2, msg("b1", p2, protocol.In, "two", time.Minute))
	f.frame(protocol.Frame{Type: protocol.TypeReleased, Phone: p1, Reason: "released"})
	bar := ansi.Strip(f.m.statusBar())
	if !strings.Contains(bar, "released "+p1) || strings.Contains(bar, "(released)") {
		t.Fatalf("status bar = %q", bar)
	}
	f.key("tab")
	if bar := ansi.Strip(f.m.statusBar()); strings.Contains(bar, "released") {
		t.Fatalf("notice survived the next action: %q", bar)
	}
	f.frame(protocol.Frame{Type: protocol.TypeReleased, Phone: p2, Reason: "timeout"})
	if bar := ansi.Strip(f.m.statusBar()); !strings.Contains(bar, p2+" was given to another agent: timed out") {
		t.Fatalf("status bar = %q", bar)
	}
	f.update(tickMsg(t0.Add(noticeTTL - time.Second)))
	if !strings.Contains(ansi.Strip(f.m.statusBar()), "timed out") {
		t.Fatal("notice gone before noticeTTL")
	}
	f.update(tickMsg(t0.Add(noticeTTL)))
	if bar := ansi.Strip(f.m.statusBar()); strings.Contains(bar, "timed out") {
		t.Fatalf("notice outlived noticeTTL: %q", bar)
	}
}

// A refused token says, whole and on its own line, why and what to do.
func TestRefusedTokenSaysWhatToDo(t *testing.T) {
	f := newFixture(t, false)
	err := fmt.Errorf("wsclient: dial: %w: invalid agent token", wsclient.ErrTokenRefused)
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Refused, Err: err}))
	v := f.view()
	lines := strings.Split(v, "\n")
	if len(lines) != 24 {
		t.Fatalf("%d lines, want 24", len(lines))
	}
	if !strings.Contains(lines[0], "token refused") {
		t.Fatalf("status bar = %q", lines[0])
	}
	if !strings.Contains(lines[1], "token refused (401): invalid agent token. The node refused") {
		t.Fatalf("line under the status bar = %q", lines[1])
	}
	if !strings.Contains(strings.Join(lines[1:4], " "), "switchboard token NAME") {
		t.Fatalf("the banner does not say what to do:\n%s", v)
	}
	f.key("f5")
	if f.conn.kicks != 0 {
		t.Fatal("f5 reconnects with a refused token")
	}
}

// F5 reconnects now while disconnected, and does nothing otherwise.
func TestReconnectKey(t *testing.T) {
	f := newFixture(t, false)
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Connected}))
	f.key("f5")
	if f.conn.kicks != 0 {
		t.Fatal("f5 while connected reconnects")
	}
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Disconnected, Err: errors.New("eof"), RetryIn: 4 * time.Second}))
	if bar := ansi.Strip(f.m.statusBar()); !strings.Contains(bar, "retrying in 4s (f5 now)") {
		t.Fatalf("status bar = %q", bar)
	}
	f.key("f5")
	if f.conn.kicks != 1 {
		t.Fatalf("f5 while disconnected: %d reconnects, want 1", f.conn.kicks)
	}
}

// The composer shows the SMS length and refuses, before sending, what
// Twilio would refuse.
func TestComposerCountsAndRefusesTooLong(t *testing.T) {
	f := newFixture(t, true)
	assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
	f.key("h")
	f.key("i")
	if v := f.view(); !strings.Contains(v, "2 chars - 1 SMS") {
		t.Fatalf("composer label lacks the length:\n%s", v)
	}
	f.m.input.SetValue(strings.Repeat("a", 161))
	if v := f.view(); !strings.Contains(v, "161 chars - 2 SMS") {
		t.Fatalf("composer label lacks the length:\n%s", v)
	}
	f.m.input.SetValue(strings.Repeat("é", 1600) + "€")
	if v := f.view(); !strings.Contains(v, "1602 chars: too long for an SMS (at most 1600)") {
		t.Fatalf("composer label does not warn:\n%s", v)
	}
	f.key("enter")
	if s := f.conn.sent(); len(s) != 0 {
		t.Fatalf("sent a reply Twilio refuses: %d frames", len(s))
	}
	if !strings.Contains(ansi.Strip(f.m.statusBar()), "too long for an SMS: 1602 characters, at most 1600") {
		t.Fatalf("status bar = %q", ansi.Strip(f.m.statusBar()))
	}
	if n := len([]rune(f.m.input.Value())); n != 1601 {
		t.Fatalf("composer lost the text: %d runes left", n)
	}
}

// The header shows how many customers wait and how long the oldest has,
// from the node's queue frames, growing between them.
func TestHeaderShowsWaiting(t *testing.T) {
	f := newFixture(t, false)
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Connected}))
	f.frame(protocol.Frame{Type: protocol.TypeQueue, Waiting: 0})
	if bar := ansi.Strip(f.m.statusBar()); strings.Contains(bar, "waiting") {
		t.Fatalf("status bar = %q", bar)
	}
	f.frame(protocol.Frame{Type: protocol.TypeQueue, Waiting: 3, LongestWaitMs: 45_000})
	if bar := ansi.Strip(f.m.statusBar()); !strings.Contains(bar, "3 waiting, longest 45s") {
		t.Fatalf("status bar = %q", bar)
	}
	f.update(tickMsg(t0.Add(80 * time.Second)))
	if bar := ansi.Strip(f.m.statusBar()); !strings.Contains(bar, "3 waiting, longest 2m05s") {
		t.Fatalf("status bar = %q", bar)
	}
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Disconnected, Err: errors.New("eof"), RetryIn: time.Second}))
	if bar := ansi.Strip(f.m.statusBar()); strings.Contains(bar, "waiting") {
		t.Fatalf("a stale count shown while disconnected: %q", bar)
	}
}

func TestSMSCount(t *testing.T) {
	for _, tc := range []struct {
		text        string
		chars, segs int
		ucs2        bool
	}{
		{"", 0, 0, false},
		{"hello", 5, 1, false},
		{strings.Repeat("a", 160), 160, 1, false},
		{strings.Repeat("a", 161), 161, 2, false},
		{strings.Repeat("a", 306), 306, 2, false},
		{strings.Repeat("a", 307), 307, 3, false},
		{"price: 5€ [ok]", 17, 1, false}, // € [ ] take two septets
		{"Grüße, Ça va? ¿Qué?", 19, 1, false},
		{"你好", 2, 1, true},
		{strings.Repeat("你", 70), 70, 1, true},
		{strings.Repeat("你", 71), 71, 2, true},
		{"ok 😀", 5, 1, true}, // an emoji is a surrogate pair
		{strings.Repeat("a", 67) + "😀", 69, 1, true},
	} {
		n := smsCount(tc.text)
		if n.chars != tc.chars || n.segments != tc.segs || n.ucs2 != tc.ucs2 {
			t.Errorf("smsCount(%.20q) = %+v, want %d chars %d segments ucs2=%v", tc.text, n, tc.chars, tc.segs, tc.ucs2)
		}
	}
}

func FuzzSMSCount(f *testing.F) {
	for _, s := range []string{"", "hello", "5€", "你好", "😀", strings.Repeat("a", 161)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := smsCount(s)
		runes := len([]rune(s))
		single, multi := 160, 153
		if n.ucs2 {
			single, multi = 70, 67
		}
		switch {
		case n.chars < runes || n.chars > 2*runes:
			t.Fatalf("%q: %d chars for %d runes", s, n.chars, runes)
		case (n.chars == 0) != (n.segments == 0):
			t.Fatalf("%q: %d chars in %d segments", s, n.chars, n.segments)
		case n.segments == 1 && n.chars > single, n.segments > 1 && (n.chars > n.segments*multi || n.chars <= (n.segments-1)*multi):
			t.Fatalf("%q: %d chars do not make %d segments", s, n.chars, n.segments)
		}
	})
}

// Signed in elsewhere: the client has stopped reconnecting; the banner says
// so on its own line and how to take over (F5), and F5 does.
func TestReplacedSaysHowToTakeOver(t *testing.T) {
	f := newFixture(t, false)
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Connected}))
	err := fmt.Errorf("wsclient: node closed the connection: %w", wsclient.ErrReplaced)
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Replaced, Err: err}))
	lines := strings.Split(f.view(), "\n")
	if !strings.Contains(lines[0], "signed in elsewhere (f5 takes over)") {
		t.Fatalf("status bar = %q", lines[0])
	}
	if !strings.HasPrefix(strings.TrimSpace(lines[1]), "You signed in elsewhere") {
		t.Fatalf("line under the status bar = %q", lines[1])
	}
	if !strings.Contains(strings.Join(lines[1:5], " "), "Press F5 to take") {
		t.Fatalf("the banner does not say how to take over:\n%s", strings.Join(lines, "\n"))
	}
	f.key("f5")
	if f.conn.kicks != 1 {
		t.Fatalf("f5 after being replaced: %d reconnects, want 1", f.conn.kicks)
	}
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Connecting, Attempt: 1}))
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Connected}))
	if v := f.view(); strings.Contains(v, "signed in elsewhere") {
		t.Fatalf("still says signed in elsewhere after taking over:\n%s", v)
	}
}
