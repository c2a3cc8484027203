package agent

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/switchboard/switchboard/agent/wsclient"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

func (f *fixture) typeKeys(s string) {
	for _, r := range s {
		f.key(string(r))
	}
}

func (f *fixture) lastSent(t *testing.T) protocol.Frame {
	t.Helper()
	sent := f.conn.sent()
	if len(sent) == 0 {
		t.Fatal("nothing sent")
	}
	return sent[len(sent)-1]
}

func TestSearchPaneFlow(t *testing.T) {
	f := newFixture(t, true)
	assign(f, p1, msg("a1", p1, protocol.In, "My camera is broken", 10*time.Minute))
	assign(f, p2, msg("b1", p2, protocol.In, "camera order late", 5*time.Minute))
	f.typeKeys("draft")

	f.key("ctrl+f")
	if v := f.view(); !strings.Contains(v, "Search your conversations:") || !strings.Contains(v, "whole words") {
		t.Fatalf("search pane not shown:\n%s", v)
	}
	f.typeKeys("camerx")
	f.key("backspace")
	f.update(tea.PasteMsg{Content: "a"})
	f.key("enter")
	q := f.lastSent(t)
	if q.Type != protocol.TypeSearch || q.Query != "camera" || q.Ref == "" || q.Before != "" || q.Phone != "" {
		t.Fatalf("sent %+v, want a search for camera", q)
	}
	if v := f.view(); !strings.Contains(v, "searching~") {
		t.Fatalf("no searching state:\n%s", v)
	}
	// An answer to an earlier request is not this one's.
	f.frame(protocol.Frame{Type: protocol.TypeResults, Ref: "other", Query: "camera", List: []protocol.Message{msg("zz", p1, protocol.In, "stale", time.Minute)}})
	f.frame(protocol.Frame{Type: protocol.TypeResults, Ref: q.Ref, Query: "camera", More: true, List: []protocol.Message{
		msg("b1", p2, protocol.In, "camera order late", 5*time.Minute),
		msg("a1", p1, protocol.In, "My camera is broken", 10*time.Minute),
	}})
	v := f.view()
	for _, want := range []string{"2 results for camera, more with pgdn", "> " + p2 + " < 5 minutes ago - camera order late", "  " + p1 + " < 10 minutes ago - My camera is broken"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "stale") {
		t.Errorf("a stale answer is shown:\n%s", v)
	}

	// pgdn at the last result asks for the next page.
	f.key("down")
	f.key("pgdown")
	next := f.lastSent(t)
	if next.Type != protocol.TypeSearch || next.Query != "camera" || next.Before != "a1" || next.Ref == q.Ref {
		t.Fatalf("next page request = %+v", next)
	}
	f.frame(protocol.Frame{Type: protocol.TypeResults, Ref: next.Ref, Query: "camera", List: []protocol.Message{msg("a0", p1, protocol.In, "camera?", time.Hour)}})
	if v := f.view(); !strings.Contains(v, "3 results for camera") || !strings.Contains(v, "camera?") {
		t.Fatalf("page 2 not appended:\n%s", v)
	}

	// Enter on a result opens its conversation; the draft is untouched.
	f.key("up")
	f.key("up")
	f.key("enter")
	if f.m.search.open || f.m.selected().phone != p2 {
		t.Fatalf("after enter: open=%v selected=%s, want %s on screen", f.m.search.open, f.m.selected().phone, p2)
	}
	if got := f.m.input.Value(); got != "draft" {
		t.Fatalf("composer = %q, want the draft", got)
	}

	// A refusal shows in the pane, not as a reply failure.
	f.key("ctrl+f")
	f.key("ctrl+u")
	f.typeKeys("?!")
	f.key("enter")
	bad := f.lastSent(t)
	f.frame(protocol.Frame{Type: protocol.TypeError, Code: protocol.CodeInvalid, Text: "q: the query holds no word to search for", Ref: bad.Ref})
	if v := f.view(); !strings.Contains(v, "q: the query holds no word") {
		t.Fatalf("refusal not shown:\n%s", v)
	}
	// esc closes; keys go to the composer again.
	f.key("esc")
	f.typeKeys("!")
	if f.m.search.open || f.m.input.Value() != "draft!" {
		t.Fatalf("after esc: open=%v composer=%q", f.m.search.open, f.m.input.Value())
	}
	if v := f.view(); strings.Contains(v, "Search your conversations") {
		t.Fatalf("pane still drawn:\n%s", v)
	}
}

func TestSearchResultNoLongerHeld(t *testing.T) {
	f := newFixture(t, true)
	assign(f, p1, msg("a1", p1, protocol.In, "refund please", time.Minute))
	f.key("ctrl+f")
	f.typeKeys("refund")
	f.key("enter")
	q := f.lastSent(t)
	f.frame(protocol.Frame{Type: protocol.TypeResults, Ref: q.Ref, Query: "refund", List: []protocol.Message{msg("a1", p1, protocol.In, "refund please", time.Minute)}})
	f.frame(protocol.Frame{Type: protocol.TypeReleased, Phone: p1, Reason: "released"})
	f.key("enter")
	if v := f.view(); !f.m.search.open || !strings.Contains(v, p1+" is no longer yours") {
		t.Fatalf("want the pane open saying the conversation is gone:\n%s", v)
	}
	// Not sent: said in the pane.
	f.conn.mu.Lock()
	f.conn.err = wsclient.ErrNotConnected
	f.conn.mu.Unlock()
	f.key("ctrl+u")
	f.typeKeys("other")
	f.key("enter")
	if v := f.view(); !strings.Contains(v, "not connected") || f.m.search.loading {
		t.Fatalf("unsent search not reported:\n%s", v)
	}
}
