package main

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

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

// post posts a webhook form to p, signed for publicBase ("" = p.base).
func post(t *testing.T, p *proc, publicBase string, form url.Values) {
	t.Helper()
	if code, body := sbt.PostForm(t, p.base, publicBase, "/sms/twilio", authToken, form); code != 200 {
		t.Fatalf("webhook %s: %d %s", form.Get("MessageSid"), code, body)
	}
}

const waFrom = "+15550000099" // TWILIO_WHATSAPP_FROM of the channel tests

// mmsAndWhatsApp: an MMS with an empty body keeps its media; a WhatsApp
// message is its own conversation, keyed whatsapp:+E164, and its reply
// goes out on WhatsApp from TWILIO_WHATSAPP_FROM.
func mmsAndWhatsApp(t *testing.T, in, p *proc, public string, fake *twiliotest.Server) {
	const c1 = "+15556660001"
	wa := "whatsapp:" + c1
	alice := p.agent("alice", 3)

	mms := sbt.InboundForm("MMmms1", c1, from, "")
	mms.Set("NumMedia", "2")
	mms.Set("MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME0")
	mms.Set("MediaContentType0", "image/jpeg")
	mms.Set("MediaUrl1", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1")
	mms.Set("MediaContentType1", "video/mp4")
	post(t, in, public, mms)
	want := []protocol.Media{
		{URL: "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME0", ContentType: "image/jpeg"},
		{URL: "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", ContentType: "video/mp4"},
	}
	f := alice.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	if len(f.List) != 1 || f.List[0].Text != "" || !reflect.DeepEqual(f.List[0].Media, want) {
		t.Fatalf("MMS offered as %+v, want its two media items", f.List)
	}
	if got := conversationMessages(t, p, c1); len(got) != 1 || !reflect.DeepEqual(got[0].Media, want) {
		t.Fatalf("MMS stored as %+v", got)
	}

	w := sbt.InboundForm("SMwa1", wa, "whatsapp:"+waFrom, "hola")
	post(t, in, public, w)
	f = alice.Expect(protocol.TypeAssigned, phoneIs(wa), wait)
	if len(f.List) != 1 || f.List[0].Text != "hola" || f.List[0].Phone != wa {
		t.Fatalf("WhatsApp offered as %+v", f.List)
	}
	if got := conversationMessages(t, p, c1); len(got) != 1 {
		t.Fatalf("the SMS conversation has %d messages, want its own 1", len(got))
	}
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: wa, Message: "hi on WhatsApp", Ref: "w1"})
	alice.Expect(protocol.TypeAck, nil, wait)
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "hi by SMS", Ref: "s1"})
	alice.Expect(protocol.TypeAck, nil, wait)
	sent := fake.WaitAccepted(t, 2, wait)
	byTo := map[string]twiliotest.SentMessage{}
	for _, m := range sent {
		byTo[m.To] = m
	}
	if m := byTo[wa]; m.From != "whatsapp:"+waFrom || m.Body != "hi on WhatsApp" {
		t.Fatalf("WhatsApp reply sent as %+v, want From whatsapp:%s", m, waFrom)
	}
	if m := byTo[c1]; m.From != from || m.Body != "hi by SMS" {
		t.Fatalf("SMS reply sent as %+v", m)
	}
}

func TestMMSAndWhatsApp(t *testing.T) {
	fake := twiliotestServer(t)
	p := start(t, sbt.FreePort(t), t.TempDir(), fake.URL(), "TWILIO_WHATSAPP_FROM="+waFrom)
	mmsAndWhatsApp(t, p, p, "", fake)
}

// On two nodes, a WhatsApp message is published on
// sms.in.whatsapp.<digits> (SMS keeps sms.in.<digits>) and is offered to an
// agent on the other node.
func TestClusterMMSAndWhatsApp(t *testing.T) {
	c := newClusterRun(t)
	n1 := c.node("n1")
	tap := bindTap(t, c, "sms.in.#")
	n2 := c.nodeWith("n2", "TWILIO_WHATSAPP_FROM="+waFrom)
	mmsAndWhatsApp(t, n1, n2, "https://sms.example.test", c.fake)
	keys := map[string]bool{}
	deadline := time.After(wait)
	for len(keys) < 2 {
		select {
		case d := <-tap:
			keys[d.RoutingKey] = true
		case <-deadline:
			t.Fatalf("routing keys seen: %v", keys)
		}
	}
	if !keys["sms.in.15556660001"] || !keys["sms.in.whatsapp.15556660001"] {
		t.Fatalf("routing keys %v, want sms.in.15556660001 and sms.in.whatsapp.15556660001", keys)
	}
}

// nodeWith is clusterRun.node with extra environment.
func (c *clusterRun) nodeWith(name string, extra ...string) *proc {
	c.t.Helper()
	if c.dirs[name] == "" {
		c.dirs[name] = c.t.TempDir()
		c.ports[name] = sbt.FreePort(c.t)
	}
	env := append([]string{
		"SWITCHBOARD_AMQP_URL=" + c.amqp,
		"SWITCHBOARD_AMQP_EXCHANGE=" + c.exchange,
		"SWITCHBOARD_NODE=" + name,
		"SWITCHBOARD_PUBLIC_URL=https://sms.example.test",
	}, extra...)
	return start(c.t, c.ports[name], c.dirs[name], c.fake.URL(), env...)
}

// optOut: STOP (any case, whole message) or OptOutType=STOP opts the
// customer out, START/UNSTOP undo it, HELP is recorded; a reply to an
// opted-out customer gets opted_out and never reaches Twilio; Twilio's
// error 21610 opts out too and is not retried.
func optOut(t *testing.T, in, p *proc, public string, fake *twiliotest.Server) {
	const c = "+15557770001"
	alice := p.agent("alice", 1)
	n := 0
	text := func(body string, extra ...string) protocol.Message {
		t.Helper()
		n++
		form := sbt.InboundForm(fmt.Sprintf("SMopt%d", n), c, from, body)
		for i := 0; i+1 < len(extra); i += 2 {
			form.Set(extra[i], extra[i+1])
		}
		post(t, in, public, form)
		for {
			f := alice.Next(wait)
			if f.Type != protocol.TypeAssigned && f.Type != protocol.TypeUpdate {
				continue
			}
			for _, m := range f.List {
				if m.Direction == protocol.In && m.Text == body {
					return m
				}
			}
		}
	}
	sends := 0
	reply := func(msg string, want string) {
		t.Helper()
		ref := fmt.Sprintf("r%d", n)
		alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c, Message: msg, Ref: ref})
		f := answer(alice)
		switch {
		case want == "ack" && f.Type == protocol.TypeAck:
			sends++
			fake.WaitSent(t, sends, wait)
		case want != "ack" && f.Type == protocol.TypeError && f.Code == want && f.Ref == ref:
		default:
			t.Fatalf("reply %q: %+v, want %s", msg, f, want)
		}
	}
	text("Hi")
	reply("hello!", "ack")
	if m := text(" Stop "); m.OptOut != protocol.OptOutStop {
		t.Fatalf("STOP stored as %+v", m)
	}
	reply("are you sure?", protocol.CodeOptedOut)
	if m := text("start"); m.OptOut != protocol.OptOutStart {
		t.Fatalf("START stored as %+v", m)
	}
	reply("welcome back", "ack")
	if m := text("HELP"); m.OptOut != protocol.OptOutHelp {
		t.Fatalf("HELP stored as %+v", m)
	}
	reply("here is help", "ack")
	text("no more texts please", "OptOutType", "STOP")
	reply("ok", protocol.CodeOptedOut)
	text("UNSTOP")
	reply("hi again", "ack")

	// Twilio refuses with 21610: failed at once, the customer opted out.
	fake.Unsubscribe(c)
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c, Message: "refused by Twilio", Ref: "r21610"})
	alice.Expect(protocol.TypeAck, nil, wait)
	st := alice.Expect(protocol.TypeStatus, func(f protocol.Frame) bool { return f.Status == protocol.StatusFailed }, wait)
	if !strings.Contains(st.Text, "21610") || !strings.Contains(st.Text, protocol.CodeOptedOut) {
		t.Fatalf("failed status text %q, want 21610 and opted_out", st.Text)
	}
	if got := len(fake.Sent()); got != sends+1 {
		t.Fatalf("%d requests to Twilio, want %d: a 21610 refusal is not retried", got, sends+1)
	}
	sends++
	reply("still there?", protocol.CodeOptedOut)
	if got := len(fake.Sent()); got != sends {
		t.Fatalf("%d requests to Twilio after the opt-out, want %d", got, sends)
	}
}

func TestOptOut(t *testing.T) {
	fake := twiliotestServer(t)
	p := start(t, sbt.FreePort(t), t.TempDir(), fake.URL())
	optOut(t, p, p, "", fake)
}

// On two nodes: the webhooks reach n1, the agent and her replies are on
// n2; the opt-out takes effect where the log is applied.
func TestClusterOptOut(t *testing.T) {
	c := newClusterRun(t)
	n1 := c.node("n1")
	n2 := c.node("n2")
	optOut(t, n1, n2, "https://sms.example.test", c.fake)
}

// When Twilio's API does not answer within the 10 s request timeout, the
// node's log line names the URL it actually called (TWILIO_API_URL), not
// api.twilio.com. (Takes the 10 s of the timeout.)
func TestNoAnswerLogNamesTheAPIURL(t *testing.T) {
	fake := twiliotestServer(t)
	p := start(t, sbt.FreePort(t), t.TempDir(), fake.URL())
	const c1 = "+15559990001"
	alice := p.agent("alice", 1)
	p.sms("SMtimeout1", c1, "hello?")
	alice.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	fake.HoldAnswers(1, 0) // until the node gives up
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "hi", Ref: "t1"})
	alice.Expect(protocol.TypeAck, nil, wait)
	host := strings.TrimPrefix(fake.URL(), "http://")
	sbt.WaitFor(t, 3*wait, "the timeout log line", func() bool {
		return strings.Contains(p.logs.String(), "no answer from "+host+" within 10s")
	})
	for _, line := range strings.Split(p.logs.String(), "\n") {
		if strings.Contains(line, "no answer from") && (!strings.Contains(line, fake.URL()+"/2010-04-01/") || strings.Contains(line, "api.twilio.com")) {
			t.Fatalf("timeout line does not name %s: %s", fake.URL(), line)
		}
	}
}
