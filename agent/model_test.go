package agent

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/transform"
)

func TestMain(m *testing.M) {
	// teatest leaves one goroutine waiting for SIGINT per test model, by design.
	// goleveldb's mpoolDrain (the real node of TestFlowSearch) outlives
	// DB.Close by one tick; it does stop.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/charmbracelet/x/exp/teatest/v2.NewTestModel.func2"),
		goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

// t0 is the fixed "now" of the pure tests.
var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// recConn records what the model sends.
type recConn struct {
	mu     sync.Mutex
	frames []protocol.Frame
	away   []bool
	kicks  int // Reconnect calls
	err    error
}

func (r *recConn) Reconnect() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kicks++
}

func (r *recConn) Send(f protocol.Frame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.frames = append(r.frames, f)
	return nil
}

func (r *recConn) SetPresence(away bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.away = append(r.away, away)
	return r.err
}

func (r *recConn) sent() []protocol.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]protocol.Frame(nil), r.frames...)
}

type fixture struct {
	m    *Model
	conn *recConn
	bell *bytes.Buffer
	now  *time.Time
}

func newFixture(t *testing.T, ascii bool) *fixture {
	t.Helper()
	now := t0
	conn := &recConn{}
	rt, _ := transform.NewRelTime(transform.RelTimeOptions{Location: time.UTC})
	refs := 0
	bell := &bytes.Buffer{}
	m, err := NewModel(Config{
		Conn:    conn,
		ASCII:   ascii,
		Now:     func() time.Time { return now },
		NewRef:  func() string { refs++; return fmt.Sprintf("ref-%d", refs) },
		RelTime: rt,
		Bell:    bell,
		Tick:    time.Millisecond, // the fixture drops tick messages; keep their timers short
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{m: m, conn: conn, bell: bell, now: &now}
	f.update(tea.WindowSizeMsg{Width: 80, Height: 24})
	f.update(tickMsg(t0))
	return f
}

// update applies msg and runs the commands it returns, feeding their
// messages back (except ticks and blinks), like a program would.
func (f *fixture) update(msg tea.Msg) {
	_, cmd := f.m.Update(msg)
	f.run(cmd)
}

func (f *fixture) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }() // tea.Tick blocks: give every command a moment
	var msg tea.Msg
	select {
	case msg = <-done:
	case <-time.After(20 * time.Millisecond):
		return
	}
	switch msg := msg.(type) {
	case tea.BatchMsg:
		for _, c := range msg {
			f.run(c)
		}
	case nil, tickMsg, bellDoneMsg:
	case sendResultMsg, catalogMsg:
		f.update(msg)
	}
}

func (f *fixture) frame(fr protocol.Frame) {
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Received, Frame: fr}))
}

func (f *fixture) key(s string) { f.update(press(s)) }

// view is the screen as the agent reads it: the view's content without
// styles (they are the terminal's business).
func (f *fixture) view() string { return plain(f.m) }

func plain(m *Model) string { return ansi.Strip(m.View().Content) }

// press is the key press named s as Bubble Tea v2 names keys ("enter",
// "alt+enter", "ctrl+r", "f1", "a", "?"). A name of one character is that
// character typed; anything else must be a known key.
func press(s string) tea.KeyPressMsg {
	var k tea.KeyPressMsg
	name := s
	for {
		switch {
		case strings.HasPrefix(name, "ctrl+") && len(name) > 5:
			k.Mod |= tea.ModCtrl
			name = name[5:]
			continue
		case strings.HasPrefix(name, "alt+") && len(name) > 4:
			k.Mod |= tea.ModAlt
			name = name[4:]
			continue
		case strings.HasPrefix(name, "shift+") && len(name) > 6:
			k.Mod |= tea.ModShift
			name = name[6:]
			continue
		}
		break
	}
	codes := map[string]rune{
		"enter": tea.KeyEnter, "tab": tea.KeyTab, "esc": tea.KeyEscape, "pgup": tea.KeyPgUp, "pgdown": tea.KeyPgDown,
		"up": tea.KeyUp, "down": tea.KeyDown, "left": tea.KeyLeft, "right": tea.KeyRight, "home": tea.KeyHome, "end": tea.KeyEnd,
		"backspace": tea.KeyBackspace, "delete": tea.KeyDelete, "f1": tea.KeyF1, "f5": tea.KeyF5, "space": tea.KeySpace,
	}
	if c, ok := codes[name]; ok {
		k.Code = c
	} else if r := []rune(name); len(r) == 1 {
		k.Code = r[0]
		if k.Mod == 0 {
			k.Text = name
		}
	} else {
		panic("press: unknown key " + s)
	}
	if k.String() != s {
		panic(fmt.Sprintf("press(%q) prints as %q", s, k.String()))
	}
	return k
}

func msg(id, phone string, dir protocol.Direction, text string, age time.Duration) protocol.Message {
	st := protocol.StatusReceived
	if dir == protocol.Out {
		st = protocol.StatusSent
	}
	return protocol.Message{ID: id, Phone: phone, Direction: dir, Text: text, Received: t0.Add(-age).UnixMilli(), Status: st}
}

const p1, p2 = "+15551230001", "+15551230002"

func assign(f *fixture, phone string, list ...protocol.Message) {
	f.frame(protocol.Frame{Type: protocol.TypeAssigned, Phone: phone, List: list})
}

func TestViewGolden(t *testing.T) {
	for _, ascii := range []bool{false, true} {
		t.Run(fmt.Sprintf("ascii=%v", ascii), func(t *testing.T) {
			f := newFixture(t, ascii)
			f.update(EventMsg(wsclient.Event{Kind: wsclient.Connected}))
			f.frame(protocol.Frame{Type: protocol.TypeAlert, Text: "How can I help you?"})
			assign(f, p1,
				msg("a1", p1, protocol.In, "Hi, I ordered the Full HD camcorder last week and it still has not arrived. Can you check?", 3*time.Hour),
				msg("a2", p1, protocol.Out, "Let me check that for you.", 2*time.Hour),
				msg("a3", p1, protocol.In, "Thank you so much, you are amazing! :)", 45*time.Second),
			)
			assign(f, p2, msg("b1", p2, protocol.In, "This is ridiculous, worst service ever!!!", 5*time.Second))
			// Stats: the catalog names products 3 and 7 (not 12), the top
			// list names 1; p2's frame comes last but p1 is selected.
			f.update(catalogMsg{titles: map[string]string{"3": "Full HD camcorder", "7": "Compact camera with zoom lens"}})
			f.frame(protocol.Frame{Type: protocol.TypeStats, Top: []protocol.TopEntry{
				{Product: "3", Title: "Full HD camcorder", Count: 42}, {Product: "1", Title: "Full HD Blu-ray and DVD player", Count: 17}, {Product: "12", Count: 5}}})
			f.frame(protocol.Frame{Type: protocol.TypeStats, Phone: p1, Product: "3", Categories: map[string]int64{"Players": 1, "Cameras": 2}, Viewed: []string{"3", "7", "1", "12"}})
			f.frame(protocol.Frame{Type: protocol.TypeStats, Phone: p2, Product: "1", Categories: map[string]int64{"Players": 5}, Viewed: []string{"1"}})
			golden.RequireEqual(t, []byte(f.view()))
		})
	}
}

func TestEmptyViewSaysWaitingAndNoStats(t *testing.T) {
	f := newFixture(t, false)
	v := f.view()
	for _, want := range []string{"connecting", "waiting for customers", "no navigation stats yet", "No conversation selected"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
}

func TestRelativeTimeRefreshesOnTick(t *testing.T) {
	f := newFixture(t, false)
	assign(f, p1, msg("a1", p1, protocol.In, "hello", 0))
	if !strings.Contains(f.view(), "just now") {
		t.Fatal("fresh message is not 'just now'")
	}
	scored := f.m.convs[0].msgs[0].Sentiment
	f.update(tickMsg(t0.Add(45 * time.Second)))
	if v := f.view(); !strings.Contains(v, "45 seconds ago") {
		t.Fatalf("after a tick the phrase did not move:\n%s", v)
	}
	if f.m.convs[0].msgs[0].Sentiment != scored {
		t.Fatal("sentiment changed on tick")
	}
}

func TestResyncShowsNothingTwice(t *testing.T) {
	f := newFixture(t, false)
	first := []protocol.Message{msg("a1", p1, protocol.In, "one", 30*time.Second), msg("a2", p1, protocol.In, "two", 20*time.Second)}
	assign(f, p1, first...)
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Disconnected, Err: errors.New("eof"), RetryIn: time.Second}))
	if !strings.Contains(f.view(), "disconnected") {
		t.Fatal("status bar does not show the disconnection")
	}
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Connected}))
	// The node re-sends assigned with what we have plus one new message, and
	// an update repeats a message too.
	assign(f, p1, append(first, msg("a3", p1, protocol.In, "three", 10*time.Second))...)
	f.frame(protocol.Frame{Type: protocol.TypeUpdate, Phone: p1, List: []protocol.Message{msg("a3", p1, protocol.In, "three", 10*time.Second)}})
	if n := len(f.m.convs); n != 1 {
		t.Fatalf("%d conversations after resync, want 1", n)
	}
	var texts []string
	for _, e := range f.m.convs[0].msgs {
		texts = append(texts, e.Message.Text)
	}
	if strings.Join(texts, ",") != "one,two,three" {
		t.Fatalf("timeline = %v", texts)
	}
	if f.bell.Len() != 1 {
		t.Fatalf("bell rang %d times, want once (for the first assignment only)", f.bell.Len())
	}
}

func TestNewConversationAnnouncesItself(t *testing.T) {
	f := newFixture(t, false)
	assign(f, p1, msg("a1", p1, protocol.In, "first", time.Minute))
	assign(f, p2, msg("b1", p2, protocol.In, "hello?", 0), msg("b2", p2, protocol.In, "anyone?", 0))
	if f.bell.String() != "\a\a" {
		t.Fatalf("bell = %q", f.bell.String())
	}
	c := f.m.convs[1]
	if !c.fresh || c.unread != 2 {
		t.Fatalf("second conversation fresh=%v unread=%d, want true 2", c.fresh, c.unread)
	}
	if !strings.Contains(f.view(), "(2) NEW") {
		t.Fatalf("list does not highlight the new conversation:\n%s", f.view())
	}
	f.key("tab")
	if f.m.sel != 1 || c.fresh || c.unread != 0 {
		t.Fatalf("after tab: sel=%d fresh=%v unread=%d", f.m.sel, c.fresh, c.unread)
	}
	f.frame(protocol.Frame{Type: protocol.TypeUpdate, Phone: p1, List: []protocol.Message{msg("a2", p1, protocol.In, "still there?", 0)}})
	if f.m.convs[0].unread != 1 {
		t.Fatalf("unread of the other conversation = %d, want 1", f.m.convs[0].unread)
	}
	f.key("shift+tab")
	if f.m.sel != 0 || f.m.convs[0].unread != 0 {
		t.Fatal("shift+tab did not go back and clear unread")
	}
}

func TestSendAckUpdateStatus(t *testing.T) {
	for _, order := range []string{"ack-first", "update-first"} {
		t.Run(order, func(t *testing.T) {
			f := newFixture(t, false)
			assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
			f.m.input.SetValue("Hi! How can I help?")
			f.key("enter")
			sent := f.conn.sent()
			want := protocol.Frame{Type: protocol.TypeResponse, Phone: p1, Message: "Hi! How can I help?", Ref: "ref-1"}
			if len(sent) != 1 || sent[0].Type != want.Type || sent[0].Phone != want.Phone || sent[0].Message != want.Message || sent[0].Ref != want.Ref {
				t.Fatalf("sent %+v, want %+v", sent, want)
			}
			if f.m.input.Value() != "" {
				t.Fatal("composer not cleared")
			}
			if !strings.Contains(f.view(), "sending") {
				t.Fatalf("pending reply not shown as sending:\n%s", f.view())
			}
			stored := protocol.Message{ID: "o1", Phone: p1, Direction: protocol.Out, Text: "Hi! How can I help?", Received: t0.UnixMilli(), Status: protocol.StatusQueued, Agent: "alice"}
			ack := protocol.Frame{Type: protocol.TypeAck, Ref: "ref-1", ID: "o1"}
			upd := protocol.Frame{Type: protocol.TypeUpdate, Phone: p1, List: []protocol.Message{stored}}
			if order == "ack-first" {
				f.frame(ack)
				f.frame(upd)
			} else {
				f.frame(upd)
				f.frame(ack)
			}
			f.frame(protocol.Frame{Type: protocol.TypeStatus, Phone: p1, ID: "o1", Status: protocol.StatusSent})
			f.frame(protocol.Frame{Type: protocol.TypeStatus, Phone: p1, ID: "o1", Status: protocol.StatusDelivered})
			f.frame(protocol.Frame{Type: protocol.TypeStatus, Phone: p1, ID: "o1", Status: protocol.StatusSent}) // late: ignored
			c := f.m.convs[0]
			if len(c.msgs) != 2 {
				t.Fatalf("%d messages, want 2 (reply shown once)", len(c.msgs))
			}
			if st := c.msgs[1].state(); st != "delivered" {
				t.Fatalf("reply state = %q, want delivered", st)
			}
		})
	}
}

func TestFailedSendRetriesWithSameRef(t *testing.T) {
	tests := []struct {
		name string
		fail func(f *fixture)
		want string
	}{
		{"error frame", func(f *fixture) {
			f.frame(protocol.Frame{Type: protocol.TypeError, Code: protocol.CodeSendFailed, Text: "provider refused", Ref: "ref-1"})
		}, "failed: provider refused"},
		{"disconnect before ack", func(f *fixture) {
			f.update(EventMsg(wsclient.Event{Kind: wsclient.Disconnected, Err: errors.New("reset"), RetryIn: time.Second}))
		}, "failed: not confirmed"},
		{"not connected", nil, "failed: not connected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, false)
			assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
			if tc.fail == nil {
				f.conn.err = wsclient.ErrNotConnected
			}
			f.m.input.SetValue("reply")
			f.key("enter")
			if tc.fail != nil {
				tc.fail(f)
			}
			if v := f.view(); !strings.Contains(v, tc.want) {
				t.Fatalf("view lacks %q:\n%s", tc.want, v)
			}
			f.conn.err = nil
			f.key("ctrl+r")
			sent := f.conn.sent()
			last := sent[len(sent)-1]
			if last.Type != protocol.TypeResponse || last.Ref != "ref-1" || last.Message != "reply" {
				t.Fatalf("retry sent %+v, want the same ref-1", last)
			}
			f.frame(protocol.Frame{Type: protocol.TypeAck, Ref: "ref-1", ID: "o1"})
			if st := f.m.convs[0].msgs[1].state(); st != "queued" {
				t.Fatalf("after retry and ack state = %q", st)
			}
		})
	}
}

func TestScrollPastTopLoadsHistory(t *testing.T) {
	f := newFixture(t, false)
	var list []protocol.Message
	for i := range 5 {
		list = append(list, msg(fmt.Sprintf("a%02d", 50+i), p1, protocol.In, fmt.Sprintf("message %d", 50+i), time.Duration(10-i)*time.Minute))
	}
	assign(f, p1, list...)
	f.key("pgup")
	sent := f.conn.sent()
	if len(sent) != 1 || sent[0].Type != protocol.TypeHistory || sent[0].Before != "a50" || sent[0].Limit != 50 {
		t.Fatalf("sent %+v, want a history request before a50", sent)
	}
	if !strings.Contains(f.view(), "loading older messages") {
		t.Fatal("no loading notice")
	}
	f.key("pgup") // a request is in flight: no second one
	if n := len(f.conn.sent()); n != 1 {
		t.Fatalf("%d requests in flight", n)
	}
	var older []protocol.Message
	for i := range 3 {
		older = append(older, msg(fmt.Sprintf("a%02d", 47+i), p1, protocol.In, fmt.Sprintf("message %d", 47+i), time.Duration(60-i)*time.Minute))
	}
	f.frame(protocol.Frame{Type: protocol.TypeHistory, Phone: p1, List: older, More: false})
	c := f.m.convs[0]
	if len(c.msgs) != 8 || c.msgs[0].Message.ID != "a47" || c.msgs[7].Message.ID != "a54" {
		t.Fatalf("after history: %d messages, first %s", len(c.msgs), c.msgs[0].Message.ID)
	}
	f.key("pgup")
	if n := len(f.conn.sent()); n != 1 {
		t.Fatal("asked for more history after more=false")
	}
	if !strings.Contains(f.view(), "beginning of the conversation") {
		t.Fatalf("top not marked:\n%s", f.view())
	}
}

// Paging past the top keeps the timeline full: the oldest message at the
// top and the ones after it below, not the oldest alone above blank lines.
func TestScrollPastTopKeepsThePageFull(t *testing.T) {
	f := newFixture(t, false)
	var list []protocol.Message
	for i := range 30 {
		list = append(list, msg(fmt.Sprintf("a%02d", 10+i), p1, protocol.In, fmt.Sprintf("message %d", i), time.Duration(40-i)*time.Minute))
	}
	assign(f, p1, list...)
	f.key("pgup")
	f.frame(protocol.Frame{Type: protocol.TypeHistory, Phone: p1, More: false})
	for range 10 {
		f.key("pgup")
	}
	v := f.view()
	for _, want := range []string{"beginning of the conversation", "message 0", "message 5"} {
		if !strings.Contains(v, want) {
			t.Fatalf("view lacks %q:\n%s", want, v)
		}
	}
}

// A released conversation leaves the list without moving the selection to
// another conversation; when the selected one goes, the one that takes its
// place on screen no longer says NEW.
func TestReleasedKeepsSelection(t *testing.T) {
	const p3, p4 = "+15551230003", "+15551230004"
	f := newFixture(t, false)
	assign(f, p1, msg("a1", p1, protocol.In, "one", time.Minute))
	assign(f, p2, msg("b1", p2, protocol.In, "two", time.Minute))
	assign(f, p3, msg("c1", p3, protocol.In, "three", time.Minute))
	assign(f, p4, msg("d1", p4, protocol.In, "four", time.Minute))
	f.key("tab")
	f.key("tab") // p3 on screen
	f.frame(protocol.Frame{Type: protocol.TypeReleased, Phone: p1, Reason: "timeout"})
	if c := f.m.selected(); c == nil || c.phone != p3 {
		t.Fatalf("selected %v after another conversation was released, want %s", c, p3)
	}
	f.frame(protocol.Frame{Type: protocol.TypeReleased, Phone: p3, Reason: "released"})
	c := f.m.selected()
	if c == nil || c.phone != p4 {
		t.Fatalf("selected %v, want %s", c, p4)
	}
	if c.unread != 0 || c.fresh {
		t.Fatalf("conversation on screen still unread=%d fresh=%v", c.unread, c.fresh)
	}
}

func TestKeysPresenceReleaseHelpQuit(t *testing.T) {
	f := newFixture(t, false)
	assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
	f.key("ctrl+t")
	if len(f.conn.away) != 1 || !f.conn.away[0] || !strings.Contains(f.m.statusBar(), "away") {
		t.Fatalf("ctrl+t: presence calls %v", f.conn.away)
	}
	f.key("ctrl+t")
	if !strings.Contains(f.m.statusBar(), "available") {
		t.Fatal("ctrl+t did not come back to available")
	}
	f.key("?")
	if !f.m.showHelp || !strings.Contains(f.view(), "release conversation") || !strings.Contains(f.view(), "transfer (agent/line)") || !strings.Contains(f.view(), "close help") {
		t.Fatal("? did not open the help")
	}
	f.key("esc")
	f.m.input.SetValue("is it")
	f.key("?")
	if f.m.showHelp || f.m.input.Value() != "is it?" {
		t.Fatalf("? with text typed: help=%v value=%q", f.m.showHelp, f.m.input.Value())
	}
	f.key("ctrl+x")
	if s := f.conn.sent(); s[len(s)-1].Type != protocol.TypeRelease || s[len(s)-1].Phone != p1 {
		t.Fatalf("ctrl+x sent %+v", s)
	}
	f.update(tea.WindowSizeMsg{Width: 120, Height: 24})
	f.frame(protocol.Frame{Type: protocol.TypeReleased, Phone: p1, Reason: "released by agent"})
	if len(f.m.convs) != 0 || !strings.Contains(f.view(), "released +15551230001") {
		t.Fatal("released conversation still shown")
	}
	if _, cmd := f.m.Update(press("ctrl+c")); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("ctrl+c does not quit")
	}
}

func TestAltEnterInsertsNewline(t *testing.T) {
	f := newFixture(t, false)
	assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
	f.key("a")
	f.key("alt+enter")
	f.key("b")
	if f.m.input.Value() != "a\nb" {
		t.Fatalf("composer = %q", f.m.input.Value())
	}
	if len(f.conn.sent()) != 0 {
		t.Fatal("alt+enter sent the reply")
	}
	f.key("enter")
	if s := f.conn.sent(); len(s) != 1 || s[0].Message != "a\nb" {
		t.Fatalf("sent %+v", s)
	}
}

func TestResizeKeepsEveryLineInBounds(t *testing.T) {
	f := newFixture(t, false)
	assign(f, p1, msg("a1", p1, protocol.In, strings.Repeat("long words wrap nicely ", 40), time.Minute))
	for _, size := range [][2]int{{80, 24}, {120, 40}, {40, 12}, {200, 10}} {
		f.update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		lines := strings.Split(f.view(), "\n")
		if len(lines) != size[1] {
			t.Errorf("%dx%d: %d lines", size[0], size[1], len(lines))
		}
		for i, l := range lines {
			if w := lipgloss.Width(l); w > size[0] {
				t.Errorf("%dx%d: line %d is %d wide", size[0], size[1], i, w)
			}
		}
	}
}

func TestHostileTextIsSanitised(t *testing.T) {
	f := newFixture(t, false)
	assign(f, p1, msg("a1", p1, protocol.In, "hi\x1b[2J\x1b]0;pwned\x07 there", time.Minute))
	if v := f.view(); strings.ContainsAny(v, "\x1b\x07") {
		t.Fatalf("escape sequence reached the screen: %q", v)
	}
}

// A reply the node stored and the SMS provider then failed arrives as a
// status frame: the view shows the node's reason and does not offer ctrl+r,
// which would resend a ref the node already stored and change nothing.
func TestProviderFailureShowsReason(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"with reason", "provider error 30003", "failed: provider error 30003"},
		{"resync without reason", "", "failed: not delivered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, false)
			assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
			f.m.input.SetValue("reply")
			f.key("enter")
			f.frame(protocol.Frame{Type: protocol.TypeAck, Ref: "ref-1", ID: "o1"})
			f.frame(protocol.Frame{Type: protocol.TypeStatus, Phone: p1, ID: "o1", Status: protocol.StatusFailed, Text: tc.text})
			v := f.view()
			if !strings.Contains(v, tc.want) {
				t.Fatalf("view lacks %q:\n%s", tc.want, v)
			}
			if strings.Contains(v, "ctrl+r retries") {
				t.Fatalf("view offers a retry that cannot resend:\n%s", v)
			}
			n := len(f.conn.sent())
			f.key("ctrl+r")
			if sent := f.conn.sent(); len(sent) != n {
				t.Fatalf("ctrl+r sent %+v", sent[n:])
			}
		})
	}
}

func teaSize(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }
