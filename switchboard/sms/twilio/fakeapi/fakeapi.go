// Package fakeapi is a fake of the parts of Twilio's REST API that
// Switchboard uses, served on loopback for sbload (load runs and the demo),
// end-to-end runs and, through the test helper twiliotest, tests:
//
//   - POST /2010-04-01/Accounts/{AccountSid}/Messages.json (CreateMessage):
//     checks basic auth and the form like Twilio (To, From, Body), answers
//     201 with a sid "SM" + 32 hex digits and status "queued", and records
//     the request, with its creation time and current status;
//   - GET /2010-04-01/Accounts/{AccountSid}/Messages.json (the Messages
//     list, for Sender.Find): the accepted messages, filtered by To and
//     From, newest first, in pages (PageSize, default 50, at most 1000;
//     Page and PageToken as in next_page_uri), in Twilio's list JSON;
//   - GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json and
//     POST .../IncomingPhoneNumbers/{Sid}.json, enough for RegisterWebhook;
//   - SendStatus posts a signed delivery-status callback as Twilio does and
//     updates the message's status.
//
// Callers shape the account and the answers: AddMessage puts in a message as
// if sent earlier; FailNext and FailListNext make requests fail with an
// HTTP status; HoldAnswers makes the fake create messages but answer late,
// so that a sender times out after Twilio has really created the message.
//
// Errors have Twilio's JSON shape ({"code","message","more_info","status"}),
// so twilio-go decodes them into *client.TwilioRestError.
//
// Concurrency: all methods are safe for concurrent use. NewServer starts
// one serving goroutine and SetAutoStatus one goroutine per accepted
// message; Close stops and waits for all of them, and ends held answers.
//
// It does not import package testing, so it may be linked into shipped
// binaries (sbload); the waits that fail a test live in twiliotest.
package fakeapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio"
)

// SentMessage is one CreateMessage request the fake received, or a
// message put in with AddMessage.
type SentMessage struct {
	AccountSID     string // from the path
	To             string
	From           string
	Body           string
	StatusCallback string
	Sid            string // "SM..." when accepted, else empty
	BasicAuthOK    bool   // the request carried the right account and token
	HTTPStatus     int    // what the fake answered: 201, or the error status
	// Status is Twilio's status word for an accepted message now: "queued",
	// then the last status SendStatus or SetAutoStatus posted. Empty when
	// refused.
	Status string
	// Created is when the fake accepted the message, its date_created
	// (which Twilio gives to the second). Zero when refused.
	Created time.Time
}

// Number is an incoming phone number of the fake account.
type Number struct {
	Sid         string // "PN..."
	PhoneNumber string
	SmsURL      string
	SmsMethod   string
	SmsAppSid   string // set to make RegisterWebhook refuse
}

// Server is a fake Twilio REST API.
type Server struct {
	accountSID, authToken string

	ln     net.Listener
	srv    *http.Server
	client *http.Client
	served chan struct{}
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu             sync.Mutex
	sent           []SentMessage
	bySid          map[string][]int // indexes into sent, for status callbacks
	failN          int
	failStatus     int
	failListN      int
	failListStatus int
	holdN          int
	holdFor        time.Duration
	numbers        []*Number
	auto           []string
	statusErrs     []error
	closed         bool          // no new status goroutines once set
	grew           chan struct{} // closed and replaced when sent grows
	unsubscribed   map[string]bool
}

// NewServer starts a fake Twilio for the account on 127.0.0.1 with a port
// chosen by the kernel. It panics if it cannot listen, like httptest.
func NewServer(accountSID, authToken string) *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("fakeapi: listen: %v", err))
	}
	s := newServer(accountSID, authToken)
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		s.srv.Serve(ln)
	}()
	return s
}

// New returns a fake that does not listen, for mounting Handler inside
// another server. Close still stops its status goroutines.
func New(accountSID, authToken string) *Server { return newServer(accountSID, authToken) }

func newServer(accountSID, authToken string) *Server {
	ctx, stop := context.WithCancel(context.Background())
	return &Server{
		accountSID: accountSID, authToken: authToken,
		// Callbacks go to loopback only (no proxy), from a goroutine per
		// message: keep as many idle connections as a burst uses.
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}},
		ctx:    ctx, stop: stop,
		grew: make(chan struct{}),
	}
}

// URL is the base URL to use as TWILIO_API_URL, e.g. http://127.0.0.1:41234.
// It is empty for a fake made with New.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops the server and every goroutine of the fake, and waits.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	if s.srv != nil {
		s.srv.Close()
		<-s.served
	}
	s.wg.Wait()
	s.client.CloseIdleConnections()
}

// Handler serves the fake API. Mount it at the root of a server, or under
// a prefix with http.StripPrefix and include the prefix in TWILIO_API_URL.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{account}/Messages.json", s.createMessage)
	mux.HandleFunc("GET /2010-04-01/Accounts/{account}/Messages.json", s.listMessages)
	mux.HandleFunc("GET /2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json", s.listNumbers)
	mux.HandleFunc("POST /2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{file}", s.updateNumber)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
	})
	return mux
}

// Sent returns every CreateMessage request received, in order, refused ones
// included (see HTTPStatus).
func (s *Server) Sent() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SentMessage(nil), s.sent...)
}

// Accepted returns the CreateMessage requests answered 201, in order.
func (s *Server) Accepted() []SentMessage {
	var out []SentMessage
	for _, m := range s.Sent() {
		if m.HTTPStatus == http.StatusCreated {
			out = append(out, m)
		}
	}
	return out
}

// AwaitSent waits until at least n requests were received (Sent) and
// returns them, or returns what there is and ctx's error when ctx ends
// first.
func (s *Server) AwaitSent(ctx context.Context, n int) ([]SentMessage, error) {
	return s.await(ctx, n, s.Sent)
}

// AwaitAccepted waits until at least n messages were accepted (Accepted),
// like AwaitSent.
func (s *Server) AwaitAccepted(ctx context.Context, n int) ([]SentMessage, error) {
	return s.await(ctx, n, s.Accepted)
}

func (s *Server) await(ctx context.Context, n int, get func() []SentMessage) ([]SentMessage, error) {
	for {
		s.mu.Lock()
		grew := s.grew
		s.mu.Unlock()
		got := get()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return get(), ctx.Err()
		}
	}
}

// record appends m to the messages and wakes the waiters. s.mu is held.
func (s *Server) record(m SentMessage) {
	if m.Sid != "" {
		if s.bySid == nil {
			s.bySid = map[string][]int{}
		}
		s.bySid[m.Sid] = append(s.bySid[m.Sid], len(s.sent))
	}
	s.sent = append(s.sent, m)
	close(s.grew)
	s.grew = make(chan struct{})
}

// FailNext makes the next n CreateMessage requests answer status (500,
// 429, 400, ...) with a Twilio-shaped JSON error (code 20000+status).
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus = n, status
}

// FailListNext makes the next n requests for the Messages list answer
// status (500, 429, 400, ...) with a Twilio-shaped JSON error (code
// 20000+status), once their basic auth passed.
func (s *Server) FailListNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failListN, s.failListStatus = n, status
}

// HoldAnswers makes the fake accept and record the next n CreateMessage
// requests it would accept, as usual, but hold each answer for d before
// writing it; d <= 0 holds it until the client goes away. Close, or the
// client closing the connection, ends a hold early. Requests it refuses
// are answered at once and do not count.
func (s *Server) HoldAnswers(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdN, s.holdFor = n, d
}

// AddMessage puts an accepted message into the account as if it had been
// sent earlier (for instance by a node that crashed before recording it).
// Empty fields get defaults: AccountSID the fake's, Sid a new "SM..." id,
// Status "queued", Created now. BasicAuthOK and HTTPStatus (201) are set.
// It returns the message as stored; Sent, Accepted and the Messages list
// include it.
func (s *Server) AddMessage(m SentMessage) SentMessage {
	if m.AccountSID == "" {
		m.AccountSID = s.accountSID
	}
	if m.Sid == "" {
		m.Sid = "SM" + randomHex()
	}
	if m.Status == "" {
		m.Status = "queued"
	}
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	m.BasicAuthOK, m.HTTPStatus = true, http.StatusCreated
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(m)
	return m
}

// SetAutoStatus makes the fake post these statuses ("sent", "delivered")
// in order to the StatusCallback of every message it accepts from now on,
// from a goroutine per message, like Twilio. Errors are kept for
// StatusErrors. No statuses (the default) turns it off.
func (s *Server) SetAutoStatus(statuses ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auto = append([]string(nil), statuses...)
}

// StatusErrors returns the errors of automatic status callbacks so far.
func (s *Server) StatusErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.statusErrs...)
}

// SendStatus sets the status of message sid (the Messages list shows it)
// and posts a delivery-status callback for it to callbackURL, signed with
// the auth token as Twilio signs it: MessageSid, MessageStatus, SmsSid,
// SmsStatus, AccountSid, To, From and, for failed and undelivered,
// ErrorCode. It fails unless the answer is 2xx.
func (s *Server) SendStatus(callbackURL, sid, status string) error {
	return s.sendStatus(context.Background(), callbackURL, sid, status)
}

func (s *Server) sendStatus(ctx context.Context, callbackURL, sid, status string) error {
	form := url.Values{
		"MessageSid": {sid}, "SmsSid": {sid},
		"MessageStatus": {status}, "SmsStatus": {status},
		"AccountSid": {s.accountSID}, "ApiVersion": {"2010-04-01"},
	}
	s.mu.Lock()
	for _, i := range s.bySid[sid] {
		form.Set("To", s.sent[i].To)
		form.Set("From", s.sent[i].From)
		s.sent[i].Status = status
	}
	s.mu.Unlock()
	if code := errorCode(status); code != 0 {
		form.Set("ErrorCode", strconv.Itoa(code))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, callbackURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("fakeapi: status callback %s: %w", callbackURL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set(twilio.SignatureHeader, twilio.Signature(s.authToken, callbackURL, form))
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("fakeapi: status callback %s: %w", callbackURL, err)
	}
	// Read to the end, or the transport closes the connection instead of
	// reusing it (Twilio keeps its callback connections alive).
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("fakeapi: status callback %s %s: HTTP %d", sid, status, resp.StatusCode)
	}
	return nil
}

func (s *Server) authOK(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	return ok && user == s.accountSID && pass == s.authToken
}

// checkAccount answers 401/404 like Twilio and reports whether to go on.
func (s *Server) checkAccount(w http.ResponseWriter, r *http.Request) bool {
	if !s.authOK(r) {
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return false
	}
	if r.PathValue("account") != s.accountSID {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return false
	}
	return true
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 20001, "Unable to parse request: "+err.Error())
		return
	}
	m := SentMessage{
		AccountSID: r.PathValue("account"), To: r.PostForm.Get("To"), From: r.PostForm.Get("From"),
		Body: r.PostForm.Get("Body"), StatusCallback: r.PostForm.Get("StatusCallback"), BasicAuthOK: s.authOK(r),
	}
	status, code, msg := s.judge(r, m)
	s.mu.Lock()
	if status == 0 && s.failN > 0 {
		s.failN--
		status, code, msg = s.failStatus, 20000+s.failStatus, http.StatusText(s.failStatus)
	}
	if status == 0 {
		status, m.Sid = http.StatusCreated, "SM"+randomHex()
		m.Status, m.Created = "queued", time.Now()
	}
	m.HTTPStatus = status
	s.record(m)
	spawn := len(s.auto) > 0 && m.StatusCallback != "" && status == http.StatusCreated && !s.closed
	auto := s.auto
	if spawn {
		s.wg.Add(1) // under mu, so never concurrent with Close's Wait
	}
	held, holdFor := false, s.holdFor
	if status == http.StatusCreated && s.holdN > 0 {
		s.holdN--
		held = true
	}
	s.mu.Unlock()

	if status != http.StatusCreated {
		writeError(w, status, code, msg)
		return
	}
	if spawn {
		go func() {
			defer s.wg.Done()
			for _, st := range auto {
				if err := s.sendStatus(s.ctx, m.StatusCallback, m.Sid, st); err != nil {
					s.mu.Lock()
					s.statusErrs = append(s.statusErrs, err)
					s.mu.Unlock()
					return
				}
			}
		}()
	}
	if held {
		s.hold(r.Context(), holdFor)
	}
	writeJSON(w, http.StatusCreated, messageJSON(m))
}

// hold waits for d (forever when d <= 0) or until the client or the fake
// goes away.
func (s *Server) hold(ctx context.Context, d time.Duration) {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
}

// messageJSON is Twilio's Message resource for an accepted message.
func messageJSON(m SentMessage) map[string]any {
	created := m.Created.UTC().Format(time.RFC1123Z)
	var sent, code, text any
	switch m.Status {
	case "sent", "delivered", "read", "undelivered", "failed":
		sent = created
	}
	switch c := errorCode(m.Status); c {
	case 30003:
		code, text = c, "Unreachable destination handset"
	case 30008:
		code, text = c, "Unknown error"
	}
	uri := "/2010-04-01/Accounts/" + m.AccountSID + "/Messages/" + m.Sid
	return map[string]any{
		"sid": m.Sid, "account_sid": m.AccountSID, "to": m.To, "from": m.From, "body": m.Body,
		"status": m.Status, "direction": "outbound-api", "api_version": "2010-04-01",
		"num_segments": "1", "num_media": "0", "date_created": created, "date_updated": created,
		"date_sent": sent, "error_code": code, "error_message": text, "price": nil, "price_unit": "USD",
		"messaging_service_sid": nil, "uri": uri + ".json",
		"subresource_uris": map[string]any{"media": uri + "/Media.json", "feedback": uri + "/Feedback.json"},
	}
}

// errorCode is the error_code Twilio gives a message in this status.
func errorCode(status string) int {
	switch status {
	case "undelivered":
		return 30003
	case "failed":
		return 30008
	}
	return 0
}

// maxPageSize is Twilio's largest PageSize.
const maxPageSize = 1000

// validPhone accepts E.164 numbers and whatsapp:+E164 addresses.
func validPhone(p string) bool {
	_, err := protocol.NormalizeAddress(p)
	return err == nil
}

// Unsubscribe makes the fake refuse messages to "to" (an address as sent,
// whatsapp: included) with Twilio's 400 and error 21610, as Twilio does
// for a customer who texted STOP.
func (s *Server) Unsubscribe(to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsubscribed == nil {
		s.unsubscribed = map[string]bool{}
	}
	s.unsubscribed[to] = true
}

func (s *Server) isUnsubscribed(to string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unsubscribed[to]
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{
		"code": code, "message": msg, "status": status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func randomHex() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}
