package agent

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
)

func TestFillPlaceholders(t *testing.T) {
	maya := &conversation{phone: "+15551230001", contact: protocol.Contact{Name: "Maya de la Cruz"}}
	anon := &conversation{phone: "+15551230002"}
	for _, tt := range []struct {
		c       *conversation
		in, out string
		missing []string
	}{
		{maya, "Hi {first_name}!", "Hi Maya!", nil},
		{maya, "{name} / {last_name} / {phone}", "Maya de la Cruz / de la Cruz / +15551230001", nil},
		{maya, "Dear {title} {first_name}", "Dear {title} Maya", []string{"{title}"}},
		{maya, "{First_Name} and {first name}", "{First_Name} and {first name}", nil}, // not placeholders
		{anon, "Hi {first_name}, {first_name}", "Hi {first_name}, {first_name}", []string{"{first_name}"}},
		{anon, "call {phone}", "call +15551230002", nil},
	} {
		out, missing := fill(tt.in, tt.c)
		if out != tt.out || !slices.Equal(missing, tt.missing) {
			t.Errorf("fill(%q) = %q %v, want %q %v", tt.in, out, missing, tt.out, tt.missing)
		}
	}
}

// A note that was not stored is retried as a note, with its ref; its ack
// and the node's update of it show it once.
func TestNoteRetriesAsANote(t *testing.T) {
	f := newFixture(t, true)
	assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
	f.conn.err = wsclient.ErrNotConnected
	f.key("ctrl+n")
	f.m.input.SetValue("call back at 5")
	f.key("enter")
	if v := f.view(); !strings.Contains(v, "failed: not connected") || !strings.Contains(v, "# note by you") {
		t.Fatalf("view:\n%s", v)
	}
	f.conn.err = nil
	f.key("ctrl+r")
	sent := f.conn.sent()
	if len(sent) != 1 || sent[0].Type != protocol.TypeNote || sent[0].Phone != p1 || sent[0].Text != "call back at 5" || sent[0].Ref != "ref-1" {
		t.Fatalf("retry sent %+v, want the note with ref-1", sent)
	}
	// Stored: the update may come before the ack (a node alone) or after.
	f.frame(protocol.Frame{Type: protocol.TypeUpdate, Phone: p1, List: []protocol.Message{{ID: "n1", Phone: p1, Direction: protocol.Note, Text: "call back at 5", Agent: "alice", Status: protocol.StatusReceived, Received: t0.UnixMilli()}}})
	f.frame(protocol.Frame{Type: protocol.TypeAck, Ref: "ref-1", ID: "n1"})
	if v := f.view(); strings.Count(v, "|  : call back at 5") != 1 || strings.Contains(v, "failed") {
		t.Fatalf("the note is not shown once, stored:\n%s", v)
	}
	// Note mode stays on until ctrl+n again; then Enter replies.
	f.key("ctrl+n")
	f.m.input.SetValue("on it")
	f.key("enter")
	if last := f.conn.sent()[len(f.conn.sent())-1]; last.Type != protocol.TypeResponse || last.Message != "on it" {
		t.Fatalf("after note mode sent %+v", last)
	}
}
