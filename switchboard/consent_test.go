package switchboard

import (
	"net/url"
	"testing"

	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// A delivery status callback with Twilio error 21610 (the customer is
// unsubscribed at Twilio) marks the customer opted out: the next reply is
// refused with opted_out and never reaches Twilio.
func TestStatusCallback21610OptsOut(t *testing.T) {
	h := startNode(t, nil)
	const c1 = "+15551110001"
	a := h.agent("alice", 1)
	h.sms("SM21610a", c1, "hi")
	a.Expect(protocol.TypeAssigned, nil, waitLong)
	a.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "hello", Ref: "r1"})
	a.Expect(protocol.TypeAck, nil, waitLong)
	sent := h.twilio.WaitSent(t, 1, waitLong)
	code, _ := sbt.PostForm(t, h.base, testPublic, "/sms/twilio/status", testAuthToken,
		url.Values{"MessageSid": {sent[0].Sid}, "MessageStatus": {"undelivered"}, "ErrorCode": {"21610"}})
	if code != 200 {
		t.Fatalf("status callback: %d", code)
	}
	a.Expect(protocol.TypeStatus, func(f protocol.Frame) bool { return f.Status == protocol.StatusFailed }, waitLong)
	a.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "still there?", Ref: "r2"})
	if f := a.Expect(protocol.TypeError, nil, waitLong); f.Code != protocol.CodeOptedOut || f.Ref != "r2" {
		t.Fatalf("reply after 21610: %+v, want opted_out", f)
	}
	if n := len(h.twilio.Sent()); n != 1 {
		t.Fatalf("%d sends, want 1", n)
	}
	// START opts in again.
	h.sms("SM21610b", c1, "START")
	a.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "welcome back", Ref: "r3"})
	a.Expect(protocol.TypeAck, nil, waitLong)
}
