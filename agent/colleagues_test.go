package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// The transfer prompt offers the colleagues the node says are free: ↓/↑
// choose among them (through the empty name, back to the line), Enter
// takes the chosen one, and typing a name still works.
func TestTransferPicksAFreeColleague(t *testing.T) {
	f := newFixture(t, true)
	assign(f, p1, msg("m1", p1, protocol.In, "hi", time.Minute))
	f.frame(protocol.Frame{Type: protocol.TypeColleagues, Agents: []string{"bob", "carol", "bad name\x1b"}})
	f.key("ctrl+g")
	if v := f.view(); !strings.Contains(v, "free: bob, carol (up/down choose)") {
		t.Fatalf("the prompt does not list the free colleagues:\n%s", v)
	}
	pick := func(keys ...string) string {
		for _, k := range keys {
			f.key(k)
		}
		return f.m.input.Value()
	}
	if got := pick("down"); got != "bob" {
		t.Fatalf("down: %q, want bob", got)
	}
	if got := pick("down"); got != "carol" {
		t.Fatalf("down down: %q, want carol", got)
	}
	if got := pick("down"); got != "" {
		t.Fatalf("past the last: %q, want empty (back to the line)", got)
	}
	if got := pick("up"); got != "carol" {
		t.Fatalf("up from empty: %q, want carol", got)
	}
	f.key("enter") // carol
	f.key("enter") // no note
	if got := f.lastSent(t); got.Type != protocol.TypeTransfer || got.To != "carol" || got.Phone != p1 {
		t.Fatalf("sent %+v, want a transfer of %s to carol", got, p1)
	}

	// Typing works as before; with nobody free the prompt says so.
	f.frame(protocol.Frame{Type: protocol.TypeColleagues, Agents: []string{}})
	f.key("ctrl+g")
	if v := f.view(); !strings.Contains(v, "no colleague is free now") {
		t.Fatalf("the prompt does not say nobody is free:\n%s", v)
	}
	if got := pick("down"); got != "" {
		t.Fatalf("down with nobody free: %q", got)
	}
	f.typeKeys("dave")
	f.key("enter")
	f.key("enter")
	if got := f.lastSent(t); got.Type != protocol.TypeTransfer || got.To != "dave" {
		t.Fatalf("sent %+v, want a transfer to dave", got)
	}
}
