package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
)

const mediaURL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME0"

// An MMS shows one line per media item with its type and URL, and no
// empty text line; with hyperlinks on, the URL is an OSC 8 link.
func TestMediaLines(t *testing.T) {
	for _, links := range []bool{false, true} {
		f := newFixture(t, true)
		f.m.cfg.Hyperlinks = links
		m := msg("m1", p1, protocol.In, "", time.Minute)
		m.Media = []protocol.Media{{URL: mediaURL, ContentType: "image/jpeg"}, {URL: "https://h/ME1", ContentType: "video/mp4"}}
		assign(f, p1, m)
		v := f.view()
		for _, want := range []string{"[media] image/jpeg https://api.twilio.com/", "[media] video/mp4 https://h/ME1"} {
			if !strings.Contains(v, want) {
				t.Fatalf("links %v: view lacks %q:\n%s", links, want, v)
			}
		}
		if !strings.Contains(v, "> "+p1) || !strings.Contains(v, "[media] image/jpeg") {
			t.Fatalf("the list does not preview the picture:\n%s", v)
		}
		raw := f.m.View().Content
		if got := strings.Contains(raw, "\x1b]8;;"+mediaURL); got != links {
			t.Fatalf("hyperlinks %v: OSC 8 link in the output = %v", links, got)
		}
	}
}

// A hostile URL cannot inject escape sequences, even as a link.
func TestMediaURLIsSanitised(t *testing.T) {
	f := newFixture(t, true)
	f.m.cfg.Hyperlinks = true
	m := msg("m1", p1, protocol.In, "", time.Minute)
	m.Media = []protocol.Media{{URL: "https://h/\x1b]8;;evil\x07x", ContentType: "image/png\x1b[2J"}}
	assign(f, p1, m)
	raw := f.m.View().Content
	if strings.Contains(raw, "evil\x07") || strings.Contains(raw, "\x1b[2J") || strings.Contains(raw, "\x1b]8;;https://h/") {
		t.Fatalf("escape sequences from the message reached the terminal: %q", raw)
	}
}

// A WhatsApp conversation is accepted and marked; the number is shown
// without its prefix.
func TestWhatsAppIsMarked(t *testing.T) {
	f := newFixture(t, true)
	wa := "whatsapp:" + p2
	assign(f, wa, msg("w1", wa, protocol.In, "hola", time.Minute))
	v := f.view()
	if !strings.Contains(v, p2+" WhatsApp") || !strings.Contains(v, p2+" - WhatsApp") {
		t.Fatalf("WhatsApp conversation not marked in the list and the header:\n%s", v)
	}
	if strings.Contains(strings.Split(v, "\n")[2], "whatsapp:") {
		t.Fatalf("the list shows the raw address:\n%s", v)
	}
}

// STOP marks the conversation opted out, START clears it; a reply refused
// with opted_out (or a 21610 failure) marks it too.
func TestOptedOutIsShown(t *testing.T) {
	f := newFixture(t, true)
	stop := msg("m1", p1, protocol.In, "STOP", 2*time.Minute)
	stop.OptOut = protocol.OptOutStop
	assign(f, p1, msg("m0", p1, protocol.In, "hi", 3*time.Minute), stop)
	if v := f.view(); !strings.Contains(v, "opted out (STOP)") || !strings.Contains(v, "STOP") {
		t.Fatalf("STOP not shown:\n%s", v)
	}
	start := msg("m2", p1, protocol.In, "start", time.Minute)
	start.OptOut = protocol.OptOutStart
	f.frame(protocol.Frame{Type: protocol.TypeUpdate, Phone: p1, List: []protocol.Message{start}})
	if v := f.view(); strings.Contains(v, "opted out") {
		t.Fatalf("START did not clear the mark:\n%s", v)
	}
	f.key("h")
	f.key("enter")
	ref := f.conn.sent()[len(f.conn.sent())-1].Ref
	f.frame(protocol.Frame{Type: protocol.TypeError, Code: protocol.CodeOptedOut, Text: "the customer opted out", Ref: ref})
	if v := f.view(); !strings.Contains(v, "opted out (STOP)") {
		t.Fatalf("an opted_out refusal is not shown:\n%s", v)
	}
}

// The node closes a session whose token expired: the agent reads why, and
// once the reconnect is refused, what to do.
func TestTokenExpiryIsExplained(t *testing.T) {
	f := newFixture(t, true)
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Connected}))
	f.frame(protocol.Frame{Type: protocol.TypeError, Code: protocol.CodeTokenExpired, Text: "your token expired; reconnect with a fresh token"})
	closeErr := &websocket.CloseError{Code: websocket.ClosePolicyViolation, Text: "token expired: reconnect with a fresh token"}
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Disconnected, Err: fmt.Errorf("wsclient: read: %w", closeErr)}))
	if v := f.view(); !strings.Contains(strings.Join(strings.Split(v, "\n")[1:3], " "), "Your token expired, so the node closed the session. Get a fresh token") {
		t.Fatalf("no banner says the token expired:\n%s", v)
	}
	err := fmt.Errorf("wsclient: dial: %w: agent token expired", wsclient.ErrTokenRefused)
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Refused, Err: err}))
	v := f.view()
	if !strings.Contains(v, "agent token expired") || !strings.Contains(v, "switchboard token NAME") {
		t.Fatalf("the refused reconnect does not say the token expired and what to do:\n%s", v)
	}
}
