package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// put sends an admin PUT with a JSON body and returns the status.
func put(t *testing.T, u, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func noteIn(list []protocol.Message, text string) bool {
	for _, m := range list {
		if m.Direction == protocol.Note && m.Text == text {
			return true
		}
	}
	return false
}

// TestDeskSurvivesKill: the real binary on one node; a note, a canned
// reply and a contact are there after kill -9, and the note never reached
// the fake Twilio.
func TestDeskSurvivesKill(t *testing.T) {
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	port, dir := sbt.FreePort(t), t.TempDir()
	p := start(t, port, dir, fake.URL())
	const c1 = "+15558880001"
	alice := p.agent("alice", 2)
	p.sms("SMdesk1", c1, "is my order on its way?")
	alice.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	alice.Send(protocol.Frame{Type: protocol.TypeNote, Phone: c1, Text: "courier lost it, reshipped", Ref: "n-1"})
	alice.Expect(protocol.TypeAck, nil, wait)
	if code := put(t, p.base+"/canned/reship", `{"text":"Hi {first_name}, we sent you a new one."}`); code != 200 {
		t.Fatalf("PUT canned = %d", code)
	}
	if code := put(t, p.base+"/contacts/"+url.PathEscape(c1), `{"name":"Maya Lopez"}`); code != 200 {
		t.Fatalf("PUT contact = %d", code)
	}
	alice.Expect(protocol.TypeUpdate, func(f protocol.Frame) bool { return f.Contact != nil && f.Contact.Name == "Maya Lopez" }, wait)
	p.kill()

	p = start(t, port, dir, fake.URL())
	alice = p.agent("alice", 2)
	canned := alice.Expect(protocol.TypeCanned, nil, wait)
	if len(canned.Canned) != 1 || canned.Canned[0].Name != "reship" {
		t.Fatalf("canned after restart = %+v", canned)
	}
	a := alice.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	if a.Contact == nil || a.Contact.Name != "Maya Lopez" || !noteIn(a.List, "courier lost it, reshipped") {
		t.Fatalf("assigned after restart = %+v", a)
	}
	if sent := fake.Sent(); len(sent) != 0 {
		t.Fatalf("fake Twilio got %+v; a note is never an SMS", sent)
	}
}

// TestClusterDeskProcesses: two real binaries on the real broker; a note
// written through node A is seen by an agent on node B and reaches neither
// node's SMS sends; a canned reply and a contact PUT on A reach B's agent.
func TestClusterDeskProcesses(t *testing.T) {
	c := newClusterRun(t)
	na, nb := c.node("na"), c.node("nb")
	const c1 = "+15558880011"
	alice := na.agent("alice", 1)
	if code := na.smsSigned("SMcd1", c1, "hello"); code != 200 {
		t.Fatalf("webhook = %d", code)
	}
	alice.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	alice.Send(protocol.Frame{Type: protocol.TypeNote, Phone: c1, Text: "wants a call back", Ref: "n-1"})
	alice.Expect(protocol.TypeAck, nil, wait)
	alice.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c1})
	alice.Expect(protocol.TypeReleased, phoneIs(c1), wait)
	alice.Send(protocol.Frame{Type: protocol.TypeAway})

	bob := nb.agent("bob", 1)
	bob.Expect(protocol.TypeCanned, nil, wait)
	if code := put(t, na.base+"/canned/callback", `{"text":"We will call you, {first_name}."}`); code != 200 {
		t.Fatalf("PUT canned = %d", code)
	}
	if f := bob.Expect(protocol.TypeCanned, nil, wait); len(f.Canned) != 1 || f.Canned[0].Name != "callback" {
		t.Fatalf("bob's canned = %+v", f)
	}
	if code := put(t, na.base+"/contacts/"+url.PathEscape(c1), `{"name":"Maya Lopez"}`); code != 200 {
		t.Fatalf("PUT contact = %d", code)
	}
	sbt.WaitFor(t, wait, "the contact on node B", func() bool {
		var ct protocol.Contact
		return sbt.GetJSON(t, nb.base+"/contacts/"+url.PathEscape(c1), admin, &ct) == 200 && ct.Name == "Maya Lopez"
	})
	if code := nb.smsSigned("SMcd2", c1, "still there?"); code != 200 {
		t.Fatalf("webhook = %d", code)
	}
	a := bob.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	if !noteIn(a.List, "wants a call back") || a.Contact == nil || a.Contact.Name != "Maya Lopez" {
		t.Fatalf("bob's assignment on B = %+v", a)
	}
	requireEqualConversations(t, []string{c1}, na, nb)
	if sent := c.fake.Sent(); len(sent) != 0 {
		t.Fatalf("fake Twilio got %+v; a note is never an SMS", sent)
	}
}
