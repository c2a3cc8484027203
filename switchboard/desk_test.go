package switchboard

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// adminDo sends an admin request with a JSON body ("" for none) and
// returns the status and body.
func adminDo(t *testing.T, method, u, token, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hasNote reports whether list holds a note with text.
func hasNote(list []protocol.Message, text string) bool {
	for _, m := range list {
		if m.Direction == protocol.Note && m.Text == text {
			return true
		}
	}
	return false
}

// A note is stored in the conversation, acked like a response, stored once
// per ref, shown to the agent who holds the conversation later, and never
// sent as SMS.
func TestNote(t *testing.T) {
	h := startNode(t, nil)
	alice := h.agent("alice", 1)
	const c1 = "+15557770001"
	h.sms("SMn1", c1, "my parcel is late")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)

	alice.Send(protocol.Frame{Type: protocol.TypeNote, Phone: c1, Text: "VIP, be nice", Ref: "n-1"})
	// The ack (the note is durable) and the update (it was applied) come
	// in either order.
	var u, ack protocol.Frame
	for u.Type == "" || ack.Type == "" {
		switch f := alice.Next(waitLong); f.Type {
		case protocol.TypeUpdate:
			u = f
		case protocol.TypeAck:
			ack = f
		}
	}
	if ack.Ref != "n-1" || ack.ID == "" {
		t.Fatalf("ack = %+v", ack)
	}
	if len(u.List) != 1 || u.List[0].Direction != protocol.Note || u.List[0].Agent != "alice" || u.List[0].ID != ack.ID {
		t.Fatalf("update = %+v", u)
	}
	alice.Send(protocol.Frame{Type: protocol.TypeNote, Phone: c1, Text: "VIP, be nice", Ref: "n-1"})
	if again := alice.Expect(protocol.TypeAck, nil, waitLong); again.ID != ack.ID {
		t.Fatalf("repeated ref acked %s, want %s", again.ID, ack.ID)
	}
	// Refused: a note on someone else's conversation, a blank one.
	alice.Send(protocol.Frame{Type: protocol.TypeNote, Phone: "+15557770999", Text: "x", Ref: "n-2"})
	if e := alice.Expect(protocol.TypeError, nil, waitLong); e.Code != protocol.CodeNotAssigned || e.Ref != "n-2" {
		t.Fatalf("note on a stranger = %+v", e)
	}
	alice.SendRaw([]byte(`{"type":"note","phone":"` + c1 + `","text":"  ","ref":"n-3"}`))
	if e := alice.Expect(protocol.TypeError, nil, waitLong); e.Code != protocol.CodeInvalid {
		t.Fatalf("blank note = %+v", e)
	}

	// A reply after the note is the only SMS Twilio ever gets.
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "On its way!", Ref: "r-1"})
	alice.Expect(protocol.TypeAck, nil, waitLong)
	h.twilio.WaitSent(t, 1, waitLong)
	if sent := h.twilio.Sent(); len(sent) != 1 || sent[0].Body != "On its way!" {
		t.Fatalf("Twilio got %+v, want only the reply", sent)
	}
	pending, err := h.node.store.PendingReplies()
	for _, p := range pending {
		if p.ID == ack.ID || err != nil {
			t.Fatalf("the note is in the outbox: %+v %v", pending, err)
		}
	}
	stored := h.stored(c1)
	if len(stored) != 3 || !hasNote(stored, "VIP, be nice") {
		t.Fatalf("stored = %+v", stored)
	}

	// bob, who gets the conversation next, sees the note in its history.
	alice.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c1})
	alice.Expect(protocol.TypeReleased, nil, waitLong)
	alice.Send(protocol.Frame{Type: protocol.TypeAway})
	bob := h.agent("bob", 1)
	h.sms("SMn2", c1, "hello?")
	a := bob.Expect(protocol.TypeAssigned, nil, waitLong)
	if !hasNote(a.List, "VIP, be nice") {
		t.Fatalf("bob's history = %+v", a.List)
	}
}

// Canned replies: the admin API with its rules, and the canned frame on
// connect and on every change.
func TestCannedReplies(t *testing.T) {
	h := startNode(t, nil)
	alice := h.agent("alice", 1)
	if f := alice.Expect(protocol.TypeCanned, nil, waitLong); len(f.Canned) != 0 {
		t.Fatalf("first canned frame = %+v", f)
	}
	put := func(name, body string) (int, string) {
		return adminDo(t, http.MethodPut, h.base+"/canned/"+name, testAdmin, body)
	}
	if code, body := put("thanks", `{"text":"Thanks {first_name}!"}`); code != 200 || !strings.Contains(body, "Thanks {first_name}!") {
		t.Fatalf("PUT = %d %s", code, body)
	}
	f := alice.Expect(protocol.TypeCanned, nil, waitLong)
	if len(f.Canned) != 1 || f.Canned[0] != (protocol.CannedReply{Name: "thanks", Text: "Thanks {first_name}!"}) {
		t.Fatalf("canned = %+v", f.Canned)
	}
	for _, tt := range []struct{ name, body, want string }{
		{"Thanks", `{"text":"x"}`, "lower-case"},
		{"-x", `{"text":"x"}`, "starts with a letter"},
		{strings.Repeat("a", protocol.MaxCannedName+1), `{"text":"x"}`, "1 to 32"},
		{"ok", `{"text":"   "}`, "empty"},
		{"ok", `{"txt":"x"}`, "unknown field"},
		{"ok", `{}`, `{"text":"..."}`},
		{"ok", `{"text":"` + strings.Repeat("a", protocol.MaxText+1) + `"}`, "more than"},
		{"ok", `not json`, "JSON"},
	} {
		if code, body := put(tt.name, tt.body); code != 400 || !strings.Contains(body, tt.want) {
			t.Errorf("PUT %s %.40s = %d %q, want 400 with %q", tt.name, tt.body, code, body, tt.want)
		}
	}
	if code, _ := adminDo(t, http.MethodPut, h.base+"/canned/x", "wrong", `{"text":"x"}`); code != 401 {
		t.Fatalf("PUT without the admin token = %d", code)
	}
	var list []protocol.CannedReply
	if code := sbt.GetJSON(t, h.base+"/canned", testAdmin, &list); code != 200 || len(list) != 1 {
		t.Fatalf("GET = %d %+v", code, list)
	}
	// A newly connected agent gets the list at once.
	bob := h.agent("bob", 1)
	if f := bob.Expect(protocol.TypeCanned, nil, waitLong); len(f.Canned) != 1 {
		t.Fatalf("bob's canned = %+v", f)
	}
	if code, _ := adminDo(t, http.MethodDelete, h.base+"/canned/thanks", testAdmin, ""); code != 204 {
		t.Fatalf("DELETE = %d", code)
	}
	if f := alice.Expect(protocol.TypeCanned, nil, waitLong); len(f.Canned) != 0 {
		t.Fatalf("canned after delete = %+v", f)
	}
	if code, _ := adminDo(t, http.MethodDelete, h.base+"/canned/thanks", testAdmin, ""); code != 404 {
		t.Fatalf("second DELETE = %d", code)
	}
}

// Contacts: set by the admin or by the agent holding the conversation,
// carried on assigned and update frames.
func TestContacts(t *testing.T) {
	h := startNode(t, nil)
	const c1 = "+15557770011"
	u := h.base + "/contacts/" + url.PathEscape(c1)
	if code, body := adminDo(t, http.MethodPut, u, testAdmin, `{"name":" Maya Lopez ","notes":"prefers email"}`); code != 200 || !strings.Contains(body, `"Maya Lopez"`) {
		t.Fatalf("PUT = %d %s", code, body)
	}
	var ct protocol.Contact
	if code := sbt.GetJSON(t, u, testAdmin, &ct); code != 200 || ct != (protocol.Contact{Name: "Maya Lopez", Notes: "prefers email"}) {
		t.Fatalf("GET = %d %+v", code, ct)
	}
	for _, body := range []string{`{"name":"a\nb"}`, `{"name":"` + strings.Repeat("x", protocol.MaxContactName+1) + `"}`, `{"nmae":"x"}`, `[]`} {
		if code, _ := adminDo(t, http.MethodPut, u, testAdmin, body); code != 400 {
			t.Errorf("PUT %.30s = %d, want 400", body, code)
		}
	}
	if code, _ := adminDo(t, http.MethodPut, h.base+"/contacts/555", testAdmin, `{"name":"x"}`); code != 400 {
		t.Fatalf("PUT on a bad phone = %d", code)
	}
	if code := sbt.GetJSON(t, h.base+"/contacts/%2B15557770099", testAdmin, nil); code != 404 {
		t.Fatalf("GET unknown = %d", code)
	}

	alice := h.agent("alice", 1)
	h.sms("SMk1", c1, "hi")
	a := alice.Expect(protocol.TypeAssigned, nil, waitLong)
	if a.Contact == nil || a.Contact.Name != "Maya Lopez" {
		t.Fatalf("assigned contact = %+v", a.Contact)
	}
	// The agent renames her; the notes stay.
	alice.Send(protocol.Frame{Type: protocol.TypeContact, Phone: c1, Name: "Maya L."})
	f := alice.Expect(protocol.TypeUpdate, func(f protocol.Frame) bool { return f.Contact != nil }, waitLong)
	if *f.Contact != (protocol.Contact{Name: "Maya L.", Notes: "prefers email"}) || len(f.List) != 0 {
		t.Fatalf("update = %+v", f)
	}
	// Not for a conversation she does not hold.
	alice.Send(protocol.Frame{Type: protocol.TypeContact, Phone: "+15557770098", Name: "X"})
	if e := alice.Expect(protocol.TypeError, nil, waitLong); e.Code != protocol.CodeNotAssigned {
		t.Fatalf("contact of a stranger = %+v", e)
	}
	// The admin's change reaches her too.
	adminDo(t, http.MethodPut, u, testAdmin, `{"name":"Maya Lopez"}`)
	f = alice.Expect(protocol.TypeUpdate, func(f protocol.Frame) bool { return f.Contact != nil }, waitLong)
	if *f.Contact != (protocol.Contact{Name: "Maya Lopez"}) {
		t.Fatalf("update = %+v", f)
	}
}

// Two nodes on the real broker: a note, a canned reply and a contact
// accepted on node A reach an agent on node B; the note reaches no fake
// Twilio.
func TestClusterDesk(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	na := startNode(t, clusterNode(amqpURL, ex, "na"))
	nb := startNode(t, clusterNode(amqpURL, ex, "nb"))
	waitReady(t, na, nb)
	const c1 = "+15557770021"

	alice := na.agent("alice", 1)
	na.sms("SMd1", c1, "hello")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)
	alice.Send(protocol.Frame{Type: protocol.TypeNote, Phone: c1, Text: "asked for a refund before", Ref: "n-1"})
	alice.Expect(protocol.TypeAck, nil, waitLong)
	alice.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c1})
	alice.Expect(protocol.TypeReleased, nil, waitLong)
	alice.Send(protocol.Frame{Type: protocol.TypeAway})

	bob := nb.agent("bob", 1)
	bob.Expect(protocol.TypeCanned, nil, waitLong)
	if code, _ := adminDo(t, http.MethodPut, na.base+"/canned/hi", testAdmin, `{"text":"Hi!"}`); code != 200 {
		t.Fatalf("PUT canned on A = %d", code)
	}
	if f := bob.Expect(protocol.TypeCanned, nil, waitLong); len(f.Canned) != 1 || f.Canned[0].Name != "hi" {
		t.Fatalf("bob's canned = %+v", f)
	}
	nb.sms("SMd2", c1, "anyone?")
	a := bob.Expect(protocol.TypeAssigned, nil, waitLong)
	if !hasNote(a.List, "asked for a refund before") {
		t.Fatalf("bob's history on B = %+v", a.List)
	}
	if code, _ := adminDo(t, http.MethodPut, na.base+"/contacts/"+url.PathEscape(c1), testAdmin, `{"name":"Maya Lopez"}`); code != 200 {
		t.Fatalf("PUT contact on A = %d", code)
	}
	f := bob.Expect(protocol.TypeUpdate, func(f protocol.Frame) bool { return f.Contact != nil }, waitLong)
	if f.Contact.Name != "Maya Lopez" {
		t.Fatalf("bob's contact = %+v", f.Contact)
	}
	// A reply from bob on B is the only SMS either fake Twilio gets.
	bob.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "Hello Maya", Ref: "r-1"})
	bob.Expect(protocol.TypeAck, nil, waitLong)
	sbt.WaitFor(t, waitLong, "the reply to be sent", func() bool { return len(na.twilio.Sent())+len(nb.twilio.Sent()) >= 1 })
	sent := append(na.twilio.Sent(), nb.twilio.Sent()...)
	if len(sent) != 1 || sent[0].Body != "Hello Maya" {
		t.Fatalf("Twilio got %+v, want only the reply", sent)
	}
	sbt.WaitFor(t, waitLong, "the contact on both nodes", func() bool {
		ca, _, _ := na.node.store.Contact(c1)
		cb, _, _ := nb.node.store.Contact(c1)
		return ca.Name == "Maya Lopez" && cb == ca
	})
}

// TestClusterDeskRepublished: a note and a canned reply whose first
// publish to the log fails (a broker failing over) are still acked / 200
// from the journal, republished, and applied once.
func TestClusterDeskRepublished(t *testing.T) {
	var drop *dropFirst
	n1 := startWrappedClusterNode(t, func(b bus.Bus) bus.Bus {
		drop = &dropFirst{Bus: b, prefix: "canned."}
		return drop
	})
	waitReady(t, n1)
	alice := n1.agent("alice", 1)
	alice.Expect(protocol.TypeCanned, nil, waitLong)
	sbt.WaitFor(t, waitLong, "the first read of the journal", func() bool { return n1.node.cluster.accept.(*journal).scans.Load() >= 1 })
	if code, _ := adminDo(t, http.MethodPut, n1.base+"/canned/hi", testAdmin, `{"text":"Hi!"}`); code != 200 {
		t.Fatalf("PUT = %d", code)
	}
	if !drop.dropped.Load() {
		t.Fatal("the publish was not dropped")
	}
	if f := alice.Expect(protocol.TypeCanned, nil, republishAfter+journalSweepEvery+waitLong); len(f.Canned) != 1 || f.Canned[0].Name != "hi" {
		t.Fatalf("canned = %+v", f)
	}
	alice.ExpectNone(protocol.TypeCanned, 300*time.Millisecond) // applied once
}

// TestClusterCannedLimit: two nodes adding the last canned reply at once
// cannot pass the limit together: it is decided where the changes are
// applied, in log order, and the node whose change came second answers 400.
func TestClusterCannedLimit(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	na := startNode(t, clusterNode(amqpURL, ex, "na"))
	nb := startNode(t, clusterNode(amqpURL, ex, "nb"))
	waitReady(t, na, nb)
	for i := range protocol.MaxCanned - 1 {
		if code, body := adminDo(t, http.MethodPut, fmt.Sprintf("%s/canned/r%d", na.base, i), testAdmin, `{"text":"x"}`); code != 200 {
			t.Fatalf("PUT %d = %d %s", i, code, body)
		}
	}
	sbt.WaitFor(t, waitLong, "node B to have them all", func() bool {
		list, _ := nb.node.store.CannedReplies()
		return len(list) == protocol.MaxCanned-1
	})
	codes := make(chan int, 2)
	for _, h := range []*harness{na, nb} {
		go func() {
			req, _ := http.NewRequest(http.MethodPut, h.base+"/canned/last-"+h.node.cluster.node, strings.NewReader(`{"text":"x"}`))
			req.Header.Set("Authorization", "Bearer "+testAdmin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	got := []int{<-codes, <-codes}
	slices.Sort(got)
	if !slices.Equal(got, []int{200, 400}) {
		t.Fatalf("the two last PUTs answered %v, want one 200 and one 400", got)
	}
	for _, h := range []*harness{na, nb} {
		if list, _ := h.node.store.CannedReplies(); len(list) != protocol.MaxCanned {
			t.Fatalf("node %s has %d canned replies, want %d", h.node.cluster.node, len(list), protocol.MaxCanned)
		}
	}
}
