package store

import (
	"context"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

func optedOut(t *testing.T, s *Store, addr string) bool {
	t.Helper()
	out, err := s.OptedOut(addr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Consent changes with the inbound message that carries it, and only the
// conversation's own channel: a WhatsApp STOP leaves SMS alone.
func TestConsentFollowsInbound(t *testing.T) {
	s := newStore(t)
	wa := "whatsapp:" + ph1
	steps := []struct {
		addr, text, provider string
		kind                 string
		smsOut, waOut        bool
	}{
		{ph1, "hello", "", "", false, false},
		{ph1, " sToP\n", "", protocol.OptOutStop, true, false},
		{ph1, "help", "", protocol.OptOutHelp, true, false},
		{ph1, "Yes", "", protocol.OptOutStart, false, false},
		{wa, "QUIT", "", protocol.OptOutStop, false, true},
		{ph1, "please stop", "", "", false, true},
		{ph1, "no more", protocol.OptOutStop, protocol.OptOutStop, true, true},
		{wa, "unstop", "", protocol.OptOutStart, true, false},
		{ph1, "START", "", protocol.OptOutStart, false, false},
	}
	for i, st := range steps {
		m, _ := mustInbound(t, s, Inbound{Sid: "SM" + string(rune('a'+i)), Phone: st.addr, Text: st.text, OptOut: st.provider})
		if m.OptOut != st.kind {
			t.Errorf("step %d %q: kind %q, want %q", i, st.text, m.OptOut, st.kind)
		}
		if got := optedOut(t, s, ph1); got != st.smsOut {
			t.Errorf("step %d %q: SMS opted out %v, want %v", i, st.text, got, st.smsOut)
		}
		if got := optedOut(t, s, wa); got != st.waOut {
			t.Errorf("step %d %q: WhatsApp opted out %v, want %v", i, st.text, got, st.waOut)
		}
	}
	if _, _, err := s.AppendInbound(context.Background(), Inbound{Sid: "SMbad", Phone: ph1, Text: "x", OptOut: "maybe"}); err == nil {
		t.Fatal("unknown opt-out kind accepted")
	}
}

// Twilio's 21610 on a failed send opts the customer out, applied from the
// log as from a local status.
func TestConsentFrom21610(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	r, _ := mustReply(t, s, Reply{Phone: ph1, Agent: alice, Ref: "a", Text: "hi"})
	if _, _, err := s.SetStatusCode(ctx, r.ID, protocol.StatusFailed, "", "30003"); err != nil || optedOut(t, s, ph1) {
		t.Fatalf("another failure code opted out (%v)", err)
	}
	r2, _ := mustReply(t, s, Reply{Phone: ph2, Agent: alice, Ref: "b", Text: "hi"})
	res, err := s.ApplyLog(ctx, []LogItem{{Status: &LogStatus{ID: r2.ID, Status: protocol.StatusFailed, ErrorCode: ErrorCodeOf("provider error 21610: unsubscribed")}}})
	if err != nil || res[0].Err != nil || !optedOut(t, s, ph2) {
		t.Fatalf("21610 from the log: %v %+v, opted out %v", err, res, optedOut(t, s, ph2))
	}
	if optedOut(t, s, ph1) {
		t.Fatal("21610 for one customer opted out another")
	}
}

// Media and the WhatsApp address survive the store and replays.
func TestMediaStored(t *testing.T) {
	s := newStore(t)
	media := []protocol.Media{{URL: "https://api.twilio.com/x/ME0", ContentType: "image/png"}, {URL: "https://h/1", ContentType: "audio/ogg"}}
	wa := "whatsapp:" + ph1
	m, _ := mustInbound(t, s, Inbound{Sid: "MM1", Phone: wa, Media: media})
	got, err := s.Message(m.ID)
	if err != nil || !reflect.DeepEqual(got.Media, media) || got.Phone != wa || got.Text != "" {
		t.Fatalf("stored %+v (%v)", got, err)
	}
	list, err := s.Conversation(wa)
	if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0].Media, media) {
		t.Fatalf("conversation %+v (%v)", list, err)
	}
	if _, _, err := s.AppendInbound(context.Background(), Inbound{Sid: "MM2", Phone: ph1, Media: []protocol.Media{{URL: ""}}}); err == nil {
		t.Fatal("media without URL accepted")
	}
}

func TestErrorCodeOf(t *testing.T) {
	for detail, want := range map[string]string{
		"provider error 21610":               "21610",
		"provider error 21610: unsubscribed": "21610",
		"provider error 2x: y":               "",
		"opted_out: the customer opted out":  "",
		"the SMS provider did not accept":    "",
	} {
		if got := ErrorCodeOf(detail); got != want {
			t.Errorf("ErrorCodeOf(%q) = %q, want %q", detail, got, want)
		}
	}
}
