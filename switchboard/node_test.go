package switchboard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms"
	"github.com/switchboard/switchboard/switchboard/sms/twilio"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
	"github.com/switchboard/switchboard/switchboard/token"
)

func TestMain(m *testing.M) {
	// goleveldb's mpoolDrain goroutine outlives DB.Close by one tick; it is
	// not ours and does stop.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

const (
	testSecret    = "test-secret"
	testAdmin     = "admin-token"
	testAccount   = "AC0123456789abcdef0123456789abcdef"
	testAuthToken = "0123456789abcdef0123456789abcdef"
	testFrom      = "+15550000000"
	testPublic    = "https://sms.example.com"
	waitLong      = 5 * time.Second
)

type harness struct {
	t      testing.TB
	node   *Node
	base   string // http://127.0.0.1:port
	ws     string // ws://127.0.0.1:port/agent
	twilio *twiliotest.Server
	public string // the public URL webhooks are signed for
}

func startNode(t testing.TB, mutate func(*Options, *Config)) *harness {
	t.Helper()
	fake := twiliotest.NewServer(testAccount, testAuthToken)
	t.Cleanup(fake.Close)
	opts := NewOptions()
	opts.Addr = "127.0.0.1:0"
	opts.DataDir = t.TempDir()
	opts.Node = "test"
	opts.Secret = testSecret
	opts.AdminToken = testAdmin
	opts.PublicURL = testPublic
	opts.StatsInterval = 0
	opts.TwilioAccountSID = testAccount
	opts.TwilioAuthToken = testAuthToken
	opts.TwilioFrom = testFrom
	opts.TwilioAPIURL = fake.URL()
	opts.Grace = 300 * time.Millisecond
	cfg := Config{
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Backoff: &sms.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 3},
	}
	if mutate != nil {
		mutate(&opts, &cfg)
	}
	n, err := New(opts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	base := "http://" + n.Addr().String()
	return &harness{t: t, node: n, base: base, ws: "ws://" + n.Addr().String() + "/agent", twilio: fake, public: opts.PublicURL}
}

func (h *harness) token(agent string, capacity int) string {
	h.t.Helper()
	tok, err := token.Issue([]byte(testSecret), agent, capacity, time.Hour, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// agent connects an agent and makes it available.
func (h *harness) agent(name string, capacity int) *sbt.Agent {
	h.t.Helper()
	a := sbt.DialAgent(h.t, h.ws, h.token(name, capacity))
	if f := a.Expect(protocol.TypeAlert, nil, waitLong); f.Text != "How can I help you?" {
		h.t.Fatalf("first alert = %q", f.Text)
	}
	a.Send(protocol.Frame{Type: protocol.TypeAvailable, Capacity: capacity})
	return a
}

func (h *harness) sms(sid, from, body string) {
	h.t.Helper()
	code, resp := sbt.PostForm(h.t, h.base, h.public, "/sms/twilio", testAuthToken, sbt.InboundForm(sid, from, testFrom, body))
	if code != http.StatusOK || !strings.Contains(resp, "<Response></Response>") {
		h.t.Fatalf("webhook %s: %d %q", sid, code, resp)
	}
}

func (h *harness) stored(phone string) []protocol.Message {
	h.t.Helper()
	list, err := h.node.store.Conversation(phone)
	if err != nil {
		h.t.Fatal(err)
	}
	return list
}

func TestWebhook(t *testing.T) {
	h := startNode(t, nil)
	valid := sbt.InboundForm("SM00000000000000000000000000000001", "+15551230001", testFrom, "hello")
	sign := func(form url.Values) string { return sbtSignature(testAuthToken, testPublic+"/sms/twilio", form) }
	tampered := url.Values{}
	for k, v := range valid {
		tampered[k] = v
	}
	tests := []struct {
		name        string
		contentType string
		body        string
		signature   string
		wantCode    int
		wantStored  int // messages stored for +15551230001 afterwards
	}{
		{"valid", "application/x-www-form-urlencoded", valid.Encode(), sign(valid), 200, 1},
		{"duplicate MessageSid", "application/x-www-form-urlencoded", valid.Encode(), sign(valid), 200, 1},
		{"unsigned", "application/x-www-form-urlencoded", formWith(valid, "MessageSid", "SMunsigned"), "", 403, 1},
		{"forged signature", "application/x-www-form-urlencoded", formWith(valid, "MessageSid", "SMforged"), "RSOYDt4T1cUTdK1PDd93/VVr8B8=", 403, 1},
		{"tampered body", "application/x-www-form-urlencoded", formWith(valid, "Body", "give me a refund"), sign(valid), 403, 1},
		{"signed for another URL", "application/x-www-form-urlencoded", formWith(valid, "MessageSid", "SMotherurl"),
			sbtSignature(testAuthToken, "https://evil.example.com/sms/twilio", parse(formWith(valid, "MessageSid", "SMotherurl"))), 403, 1},
		{"malformed form", "application/x-www-form-urlencoded", "MessageSid=%zz&From=", "x", 400, 1},
		{"wrong content type", "application/json", `{"MessageSid":"SM1"}`, "x", 400, 1},
		{"missing From", "application/x-www-form-urlencoded", without(valid, "From", "SMnofrom"), sign(parse(without(valid, "From", "SMnofrom"))), 400, 1},
		{"bad From", "application/x-www-form-urlencoded", formWith(formValues(valid, "MessageSid", "SMbadfrom"), "From", "12345"),
			sign(parse(formWith(formValues(valid, "MessageSid", "SMbadfrom"), "From", "12345"))), 400, 1},
		{"oversized", "application/x-www-form-urlencoded", formWith(formValues(valid, "MessageSid", "SMbig"), "Body", strings.Repeat("a", 70<<10)), "x", 413, 1},
		{"second message", "application/x-www-form-urlencoded", formWith(valid, "MessageSid", "SM2"), sign(parse(formWith(valid, "MessageSid", "SM2"))), 200, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.base+"/sms/twilio", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.contentType)
			if tt.signature != "" {
				req.Header.Set("X-Twilio-Signature", tt.signature)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, tt.wantCode)
			}
			if tt.wantCode == 200 {
				if ct := resp.Header.Get("Content-Type"); ct != "text/xml" {
					t.Fatalf("content type = %q", ct)
				}
				if !strings.Contains(string(body), "<Response></Response>") {
					t.Fatalf("body = %q", body)
				}
			}
			if got := len(h.stored("+15551230001")); got != tt.wantStored {
				t.Fatalf("stored = %d, want %d", got, tt.wantStored)
			}
		})
	}
	// The node still serves after all that.
	if code := sbt.GetJSON(t, h.base+"/readyz", "", nil); code != 200 {
		t.Fatalf("readyz = %d", code)
	}
}

func TestWebhookFailsClosedWithoutAuthToken(t *testing.T) {
	h := startNode(t, func(o *Options, c *Config) {
		o.TwilioAccountSID, o.TwilioAuthToken = "", ""
		c.Sender = sms.NewConsole(slog.New(slog.NewTextHandler(io.Discard, nil)))
	})
	form := sbt.InboundForm("SM1", "+15551230002", testFrom, "hi")
	// Signed with some token: still refused, because the node has none.
	if code, _ := sbt.PostForm(t, h.base, testPublic, "/sms/twilio", "guess", form); code != 403 {
		t.Fatalf("status = %d, want 403", code)
	}
	if n := len(h.stored("+15551230002")); n != 0 {
		t.Fatalf("stored %d", n)
	}
}

func TestAgentAuthAndOrigin(t *testing.T) {
	h := startNode(t, nil)
	expired, _ := token.Issue([]byte(testSecret), "alice", 0, time.Second, time.Now().Add(-time.Hour))
	foreign, _ := token.Issue([]byte("another secret"), "alice", 0, time.Hour, time.Now())
	good := h.token("alice", 1)
	tests := []struct {
		name   string
		header http.Header
		query  string
		want   int
	}{
		{"no token", nil, "", 401},
		{"garbage token", http.Header{"Authorization": {"Bearer nope"}}, "", 401},
		{"expired token", http.Header{"Authorization": {"Bearer " + expired}}, "", 401},
		{"token from another secret", http.Header{"Authorization": {"Bearer " + foreign}}, "", 401},
		{"cross-origin", http.Header{"Authorization": {"Bearer " + good}, "Origin": {"https://evil.example.com"}}, "", 403},
		{"token in query", nil, "?token=" + url.QueryEscape(good), 101},
		{"same origin", http.Header{"Authorization": {"Bearer " + good}, "Origin": {"http://" + h.node.Addr().String()}}, "", 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, resp, err := websocket.DefaultDialer.Dial(h.ws+tt.query, tt.header)
			if conn != nil {
				conn.Close()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d (%v)", resp.StatusCode, tt.want, err)
			}
		})
	}
}

func TestBadFrames(t *testing.T) {
	h := startNode(t, nil)
	a := h.agent("alice", 1)
	tests := []struct {
		name string
		raw  string
		code string
	}{
		{"not json", "hello", protocol.CodeBadFrame},
		{"json array", `[1,2]`, protocol.CodeBadFrame},
		{"no type", `{"phone":"+15551234567"}`, protocol.CodeBadFrame},
		{"unknown type", `{"type":"dance"}`, protocol.CodeUnknownType},
		{"wrong field type", `{"type":"available","capacity":"lots"}`, protocol.CodeBadFrame},
		{"response without ref", `{"type":"response","message":"hi"}`, protocol.CodeInvalid},
		{"response to a stranger", `{"type":"response","phone":"+15559999999","message":"hi","ref":"r1"}`, protocol.CodeNotAssigned},
		{"response with no conversation", `{"type":"response","message":"hi","ref":"r2"}`, protocol.CodeNotAssigned},
		{"release a stranger", `{"type":"release","phone":"+15559999999"}`, protocol.CodeNotAssigned},
		{"history of a stranger", `{"type":"history","phone":"+15559999999"}`, protocol.CodeNotAssigned},
		{"bad phone", `{"type":"release","phone":"555"}`, protocol.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.SendRaw([]byte(tt.raw))
			f := a.Expect(protocol.TypeError, nil, waitLong)
			if f.Code != tt.code {
				t.Fatalf("error code = %q (%s), want %q", f.Code, f.Text, tt.code)
			}
		})
	}
	// Still connected and working: a message for alice arrives.
	h.sms("SMafterbad", "+15551230003", "still there?")
	a.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == "+15551230003" }, waitLong)
	if n, err := h.node.store.Conversation("+15559999999"); err != nil || len(n) != 0 {
		t.Fatalf("refused frames stored something: %v %v", n, err)
	}

	// An oversized frame is answered with too_large, then the session
	// ends with "message too big".
	b := h.agent("bob", 1)
	b.SendRaw([]byte(`{"type":"response","message":"` + strings.Repeat("x", maxFrame) + `","ref":"big"}`))
	if f := b.Expect(protocol.TypeError, nil, waitLong); f.Code != protocol.CodeTooLarge {
		t.Fatalf("error code = %q (%s), want %q", f.Code, f.Text, protocol.CodeTooLarge)
	}
	err := b.Closed(waitLong)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close = %v, want 1009", err)
	}
}

func TestRoutingReplyAndStatus(t *testing.T) {
	h := startNode(t, nil)
	alice := h.agent("alice", 1)
	const c1, c2, c3 = "+15551110001", "+15551110002", "+15551110003"

	// Only alice is on: c1 is hers.
	h.sms("SMr1", c1, "I love this shop!")
	f := alice.Expect(protocol.TypeAssigned, nil, waitLong)
	if f.Phone != c1 || len(f.List) != 1 || f.List[0].Text != "I love this shop!" || f.List[0].Direction != protocol.In {
		t.Fatalf("assigned = %+v", f)
	}
	// bob joins; c2 goes to him (alice is full), c3 waits.
	bob := h.agent("bob", 1)
	h.sms("SMr2", c2, "where is my order")
	bob.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c2 }, waitLong)
	h.sms("SMr3", c3, "hello?")
	sbt.WaitFor(t, waitLong, "c3 waiting", func() bool {
		var w []string
		h.node.router.call(context.Background(), func() { w = h.node.router.engine.Waiting() })
		return len(w) == 1 && w[0] == c3
	})
	// A follow-up in c1 is an update for alice with only the new message.
	h.sms("SMr4", c1, "also, do you ship to Canada?")
	u := alice.Expect(protocol.TypeUpdate, nil, waitLong)
	if u.Phone != c1 || len(u.List) != 1 || u.List[0].Text != "also, do you ship to Canada?" {
		t.Fatalf("update = %+v", u)
	}

	// alice replies without naming the phone (she has exactly one conversation).
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Message: "Yes we do!", Ref: "a-1"})
	ack := alice.Expect(protocol.TypeAck, nil, waitLong)
	if ack.Ref != "a-1" || ack.ID == "" {
		t.Fatalf("ack = %+v", ack)
	}
	sent := h.twilio.WaitSent(t, 1, waitLong)
	if m := sent[0]; m.To != c1 || m.From != testFrom || m.Body != "Yes we do!" || !m.BasicAuthOK || m.StatusCallback != testPublic+"/sms/twilio/status" {
		t.Fatalf("sent = %+v", m)
	}
	// The same ref again: acknowledged with the same id, not sent again.
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "Yes we do!", Ref: "a-1"})
	if again := alice.Expect(protocol.TypeAck, nil, waitLong); again.ID != ack.ID {
		t.Fatalf("repeated ref got id %s, want %s", again.ID, ack.ID)
	}
	// Twilio reports delivery; alice sees it.
	code, _ := sbt.PostForm(t, h.base, testPublic, "/sms/twilio/status", testAuthToken, url.Values{"MessageSid": {sent[0].Sid}, "MessageStatus": {"delivered"}})
	if code != 200 {
		t.Fatalf("status callback = %d", code)
	}
	st := alice.Expect(protocol.TypeStatus, func(f protocol.Frame) bool { return f.Status == protocol.StatusDelivered }, waitLong)
	if st.ID != ack.ID || st.Phone != c1 {
		t.Fatalf("status = %+v", st)
	}
	// A late "sent" does not move it backwards.
	sbt.PostForm(t, h.base, testPublic, "/sms/twilio/status", testAuthToken, url.Values{"MessageSid": {sent[0].Sid}, "MessageStatus": {"sent"}})
	if m, _ := h.node.store.Message(ack.ID); m.Status != protocol.StatusDelivered {
		t.Fatalf("status after late sent = %s", m.Status)
	}
	if n := len(h.twilio.Sent()); n != 1 {
		t.Fatalf("Twilio got %d sends, want 1", n)
	}

	// alice releases c1: the waiting c3 is offered to her at once.
	alice.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c1})
	alice.Expect(protocol.TypeReleased, func(f protocol.Frame) bool { return f.Phone == c1 && f.Reason == "released" }, waitLong)
	alice.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c3 }, waitLong)

	// c1 writes again: bob is full, alice is full: it waits. When bob
	// releases c2, c1 goes to bob... unless its previous agent (alice) is
	// free; she is not, so bob gets it.
	h.sms("SMr5", c1, "thanks!")
	bob.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c2})
	bob.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c1 }, waitLong)

	// Sticky: c2 writes again after alice frees up; bob is full, alice free.
	// Then c3 released by alice and c1 by bob; c1 writes again: back to bob.
	bob.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c1})
	bob.Expect(protocol.TypeReleased, func(f protocol.Frame) bool { return f.Phone == c1 }, waitLong)
	alice.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c3})
	alice.Expect(protocol.TypeReleased, func(f protocol.Frame) bool { return f.Phone == c3 }, waitLong)
	h.sms("SMr6", c1, "one more thing")
	// alice has been idle longer, but c1's previous agent is bob.
	a := bob.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c1 }, waitLong)
	if last := a.List[len(a.List)-1]; last.Text != "one more thing" {
		t.Fatalf("history ends with %q", last.Text)
	}

	// History paging.
	bob.Send(protocol.Frame{Type: protocol.TypeHistory, Phone: c1, Limit: 2})
	hist := bob.Expect(protocol.TypeHistory, nil, waitLong)
	if len(hist.List) != 2 || !hist.More || hist.List[1].Text != "one more thing" {
		t.Fatalf("history = %+v", hist)
	}

	// The admin API shows the conversation, oldest first.
	var conv []protocol.Message
	if code := sbt.GetJSON(t, h.base+"/conversations/"+url.PathEscape(c1), testAdmin, &conv); code != 200 {
		t.Fatalf("admin = %d", code)
	}
	var texts []string
	for _, m := range conv {
		texts = append(texts, m.Text)
	}
	want := "I love this shop!|also, do you ship to Canada?|Yes we do!|thanks!|one more thing"
	if got := strings.Join(texts, "|"); got != want {
		t.Fatalf("conversation = %s", got)
	}
	if code := sbt.GetJSON(t, h.base+"/conversations/"+url.PathEscape(c1), "wrong", nil); code != 401 {
		t.Fatalf("admin without token = %d", code)
	}
}

func TestReplyFailsAfterRetries(t *testing.T) {
	h := startNode(t, nil)
	alice := h.agent("alice", 1)
	h.sms("SMf1", "+15551120001", "hi")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)
	h.twilio.FailNext(3, 500)
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Message: "hello", Ref: "f-1"})
	ack := alice.Expect(protocol.TypeAck, nil, waitLong)
	st := alice.Expect(protocol.TypeStatus, func(f protocol.Frame) bool { return f.Status == protocol.StatusFailed }, waitLong)
	if st.ID != ack.ID {
		t.Fatalf("status = %+v", st)
	}
	if n := len(h.twilio.Sent()); n != 3 {
		t.Fatalf("attempts = %d, want 3", n)
	}
	if p, _ := h.node.store.Pending(); len(p) != 0 {
		t.Fatalf("still pending: %v", p)
	}
}

// A send whose answer never came (Twilio took the message, then the
// request timed out) is looked up at Twilio before it is tried again: the
// customer gets the reply once, and the node records Twilio's sid for it.
func TestReplyTimedOutButTakenIsNotSentAgain(t *testing.T) {
	h := startNode(t, func(o *Options, c *Config) {
		s, err := twilio.NewSender(twilio.Config{AccountSID: o.TwilioAccountSID, AuthToken: o.TwilioAuthToken,
			From: o.TwilioFrom, APIURL: o.TwilioAPIURL, Timeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		c.Sender = s
	})
	alice := h.agent("alice", 1)
	h.sms("SMto1", "+15551120101", "hi")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)
	h.twilio.HoldAnswers(1, 5*time.Second)
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Message: "hello once", Ref: "to-1"})
	ack := alice.Expect(protocol.TypeAck, nil, waitLong)
	sent := h.twilio.WaitAccepted(t, 1, waitLong)
	sbt.WaitFor(t, waitLong, "Twilio's sid recorded for the reply", func() bool {
		m, err := h.node.store.MessageByProviderID(sent[0].Sid)
		return err == nil && m.ID == ack.ID
	})
	// Recorded means handled: nothing can send it any more.
	if p, _ := h.node.store.Pending(); len(p) != 0 {
		t.Fatalf("still pending: %v", p)
	}
	if sent := h.twilio.Accepted(); len(sent) != 1 {
		t.Fatalf("the reply reached Twilio %d times, want 1: %+v", len(sent), sent)
	}
}

func TestGracePeriod(t *testing.T) {
	h := startNode(t, nil)
	alice := h.agent("alice", 1)
	h.sms("SMg1", "+15551130001", "hi")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)
	alice.Conn.Close()

	// Back within the grace period: the conversation is still hers.
	alice = h.agent("alice", 1)
	alice.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == "+15551130001" }, waitLong)

	// Gone for longer: requeued and offered to bob.
	bob := h.agent("bob", 1)
	alice.Conn.Close()
	bob.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == "+15551130001" }, waitLong)
}

// An agent whose grace period ran out while it was away is told, when it
// reconnects, which conversations it lost: its client still shows them and
// would otherwise keep offering replies the node refuses.
func TestReconnectAfterGraceSaysReleased(t *testing.T) {
	h := startNode(t, nil)
	alice := h.agent("alice", 2)
	h.sms("SMl1", "+15551140001", "hi")
	h.sms("SMl2", "+15551140002", "hello")
	alice.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == "+15551140001" }, waitLong)
	alice.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == "+15551140002" }, waitLong)
	alice.Conn.Close()

	// Past the grace period bob takes both.
	bob := h.agent("bob", 2)
	bob.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == "+15551140001" }, waitLong)
	bob.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == "+15551140002" }, waitLong)

	alice = sbt.DialAgent(t, h.ws, h.token("alice", 2))
	alice.Expect(protocol.TypeAlert, nil, waitLong)
	for _, phone := range []string{"+15551140001", "+15551140002"} {
		f := alice.Expect(protocol.TypeReleased, func(f protocol.Frame) bool { return f.Phone == phone }, waitLong)
		if f.Reason != "timeout" {
			t.Fatalf("released %s: reason %q, want timeout", phone, f.Reason)
		}
	}
	// Told once.
	alice.Conn.Close()
	alice = sbt.DialAgent(t, h.ws, h.token("alice", 2))
	alice.Expect(protocol.TypeAlert, nil, waitLong)
	alice.ExpectNone(protocol.TypeReleased, 200*time.Millisecond)
}

func TestSlowAgentIsDisconnected(t *testing.T) {
	n := &Node{log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: nopMetrics(), now: time.Now}
	s := newSession(n, nil, "slow", 1)
	s.writing = true // a writer is busy (and stuck): the queue only grows
	for i := 0; i < sendQueueLen; i++ {
		if !s.enqueue(protocol.Frame{Type: protocol.TypeAlert, Text: "x"}, time.Time{}) {
			t.Fatalf("frame %d refused before the queue was full", i)
		}
	}
	if s.enqueue(protocol.Frame{Type: protocol.TypeAlert, Text: "one too many"}, time.Time{}) {
		t.Fatal("frame accepted beyond the queue")
	}
	select {
	case <-s.done:
	default:
		t.Fatal("slow session not closed")
	}
	if s.enqueue(protocol.Frame{Type: protocol.TypeAlert}, time.Time{}) {
		t.Fatal("closed session accepted a frame")
	}
}

func sbtSignature(authToken, u string, form url.Values) string {
	return twilio.Signature(authToken, u, form)
}

// formValues copies form with key set to v.
func formValues(form url.Values, key, v string) url.Values {
	out := url.Values{}
	for k, vs := range form {
		out[k] = append([]string(nil), vs...)
	}
	out.Set(key, v)
	return out
}

// formWith returns the encoded form with key set to v.
func formWith(form url.Values, key, v string) string { return formValues(form, key, v).Encode() }

// without returns the encoded form without key and with a new MessageSid.
func without(form url.Values, key, sid string) string {
	out := formValues(form, "MessageSid", sid)
	out.Del(key)
	return out.Encode()
}

func parse(body string) url.Values {
	v, _ := url.ParseQuery(body)
	return v
}

// TestRunReturnsAFailure: a node that fails (Failed) is shut down by Run,
// which returns the failure, as the switchboard command does before its
// supervisor restarts it.
func TestRunReturnsAFailure(t *testing.T) {
	opts := NewOptions()
	opts.Addr = "127.0.0.1:0"
	opts.DataDir = t.TempDir()
	opts.StatsInterval = 0
	n, err := New(opts, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	sbt.WaitFor(t, waitLong, "started", func() bool { return n.started.Load() && n.Ready() == nil })
	boom := errors.New("test: the log was replaced")
	n.fail(boom)
	n.fail(errors.New("test: a second failure")) // reported once
	select {
	case err := <-done:
		if !errors.Is(err, boom) || strings.Contains(err.Error(), "second") {
			t.Fatalf("Run = %v, want the first failure", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Run did not return after the node failed")
	}
	if err := n.Ready(); err == nil {
		t.Fatal("the node is still ready after Run returned")
	}
}
