package main

import (
	"net/url"

	"testing"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// Issue 19 end to end with the real binary: one node, and two nodes on the
// real broker where the issue asks for it.

func singleNode(t *testing.T) (*proc, *twiliotest.Server) {
	t.Helper()
	fake := twiliotest.NewServer(account, authToken)
	t.Cleanup(fake.Close)
	return start(t, sbt.FreePort(t), t.TempDir(), fake.URL()), fake
}

// refConflict: a ref reused with another phone or text gets ref_conflict,
// never an ack, and nothing more reaches Twilio; the identical repeat gets
// the first ack again.
func refConflict(t *testing.T, p *proc, fake *twiliotest.Server, sms func(sid, phone, body string)) {
	const c1, c2 = "+15553330001", "+15553330002"
	alice := p.agent("alice", 2)
	sms("SMrc1", c1, "hi")
	alice.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	sms("SMrc2", c2, "hello")
	alice.Expect(protocol.TypeAssigned, phoneIs(c2), wait)
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "first", Ref: "x"})
	ack := alice.Expect(protocol.TypeAck, nil, wait)
	for _, f := range []protocol.Frame{
		{Type: protocol.TypeResponse, Phone: c2, Message: "first", Ref: "x"},
		{Type: protocol.TypeResponse, Phone: c1, Message: "second", Ref: "x"},
	} {
		alice.Send(f)
		got := answer(alice)
		if got.Type != protocol.TypeError || got.Code != protocol.CodeRefConflict || got.Ref != "x" {
			t.Fatalf("reused ref for %s %q: %+v, want error ref_conflict with the ref", f.Phone, f.Message, got)
		}
	}
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "first", Ref: "x"})
	if again := alice.Expect(protocol.TypeAck, nil, wait); again.ID != ack.ID {
		t.Fatalf("identical repeat acked %s, want %s", again.ID, ack.ID)
	}
	fake.WaitSent(t, 1, wait)
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c2, Message: "done", Ref: "y"})
	alice.Expect(protocol.TypeAck, nil, wait)
	sent := fake.WaitSent(t, 2, wait)
	if len(sent) != 2 || sent[0].Body != "first" || sent[1].Body != "done" {
		t.Fatalf("sent %+v, want first then done", sent)
	}
}

func TestRefConflict(t *testing.T) {
	p, fake := singleNode(t)
	refConflict(t, p, fake, p.sms)
}

func TestClusterRefConflict(t *testing.T) {
	c := newClusterRun(t)
	n1 := c.node("n1")
	c.node("n2")
	refConflict(t, n1, c.fake, clusterSMS(t, n1))
}

// answer is the next frame that answers a request: status frames of
// earlier replies are skipped.
func answer(a *sbt.Agent) protocol.Frame {
	for {
		if f := a.Next(wait); f.Type != protocol.TypeStatus && f.Type != protocol.TypeUpdate {
			return f
		}
	}
}

// clusterSMS posts webhooks signed for the public URL cluster nodes use.
func clusterSMS(t *testing.T, p *proc) func(sid, phone, body string) {
	return func(sid, phone, body string) {
		t.Helper()
		if code := p.smsSigned(sid, phone, body); code != 200 {
			t.Fatalf("webhook %s: %d", sid, code)
		}
	}
}

func twiliotestServer(t *testing.T) *twiliotest.Server {
	fake := twiliotest.NewServer(account, authToken)
	t.Cleanup(fake.Close)
	return fake
}

// conversationMessages reads a stored conversation through the admin API.
func conversationMessages(t *testing.T, p *proc, phone string) []protocol.Message {
	t.Helper()
	var list []protocol.Message
	if code := sbt.GetJSON(t, p.base+"/conversations/"+url.PathEscape(phone), admin, &list); code != 200 {
		t.Fatalf("GET /conversations/%s: %d", phone, code)
	}
	return list
}
