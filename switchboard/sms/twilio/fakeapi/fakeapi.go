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
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}},
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

// AddNumber adds an incoming phone number to the account and returns it.
func (s *Server) AddNumber(phone string) Number {
	n := &Number{Sid: "PN" + randomHex(), PhoneNumber: phone, SmsMethod: "POST"}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.numbers = append(s.numbers, n)
	return *n
}

// SetNumber replaces the number with n.Sid (to attach an SMS application).
func (s *Server) SetNumber(n Number) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, old := range s.numbers {
		if old.Sid == n.Sid {
			s.numbers[i] = &n
		}
	}
}

// Number returns the incoming phone number phone, as last updated.
func (s *Server) Number(phone string) (Number, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.numbers {
		if n.PhoneNumber == phone {
			return *n, true
		}
	}
	return Number{}, false
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
	for i, m := range s.sent {
		if m.Sid == sid && sid != "" {
			form.Set("To", m.To)
			form.Set("From", m.From)
			s.sent[i].Status = status
		}
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
	defer resp.Body.Close()
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

// listMessages serves the Messages list: accepted messages, filtered by To
// and From, newest first (equal creation times: the later added first).
// Page N without PageToken starts at message N*PageSize; PageToken
// "PA"+sid starts after that message and "PB"+sid ends before it, as in
// the next_page_uri and previous_page_uri it answers, so that paging is
// stable while messages are added.
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	if !s.checkAccount(w, r) {
		return
	}
	q := r.URL.Query()
	to, from, token := q.Get("To"), q.Get("From"), q.Get("PageToken")
	pageSize, page := 50, 0
	if v := q.Get("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			writeError(w, http.StatusBadRequest, 20001, fmt.Sprintf("PageSize must be between 1 and %d", maxPageSize))
			return
		}
		pageSize = n
	}
	if v := q.Get("Page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, 20001, "Page must be a non-negative integer")
			return
		}
		page = n
	}
	var list []SentMessage
	s.mu.Lock()
	if s.failListN > 0 {
		s.failListN--
		status := s.failListStatus
		s.mu.Unlock()
		writeError(w, status, 20000+status, http.StatusText(status))
		return
	}
	for _, m := range s.sent {
		if m.HTTPStatus == http.StatusCreated && (to == "" || m.To == to) && (from == "" || m.From == from) {
			list = append(list, m)
		}
	}
	s.mu.Unlock()
	slices.Reverse(list)
	slices.SortStableFunc(list, func(a, b SentMessage) int { return b.Created.Compare(a.Created) })

	start := len(list)
	if page <= len(list)/pageSize { // and page*pageSize cannot overflow
		start = page * pageSize
	}
	end := min(start+pageSize, len(list))
	if token != "" {
		dir, sid := token[:min(2, len(token))], token[min(2, len(token)):]
		i := slices.IndexFunc(list, func(m SentMessage) bool { return m.Sid == sid })
		switch {
		case i < 0 || (dir != "PA" && dir != "PB"):
			writeError(w, http.StatusBadRequest, 20001, "Invalid PageToken")
			return
		case dir == "PA":
			start, end = i+1, min(i+1+pageSize, len(list))
		default:
			start, end = max(0, i-pageSize), i
		}
	}
	items := make([]map[string]any, 0, end-start)
	for _, m := range list[start:end] {
		items = append(items, messageJSON(m))
	}

	base := "/2010-04-01/Accounts/" + s.accountSID + "/Messages.json"
	pageURI := func(page int, token string) string {
		v := url.Values{}
		if to != "" {
			v.Set("To", to)
		}
		if from != "" {
			v.Set("From", from)
		}
		v.Set("PageSize", strconv.Itoa(pageSize))
		v.Set("Page", strconv.Itoa(page))
		if token != "" {
			v.Set("PageToken", token)
		}
		return base + "?" + v.Encode()
	}
	var next, prev any
	if end < len(list) && end > start {
		next = pageURI(page+1, "PA"+list[end-1].Sid)
	}
	if page > 0 && start > 0 && end > start {
		prev = pageURI(page-1, "PB"+list[start].Sid)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"messages": items, "page": page, "page_size": pageSize,
		"start": start, "end": start + max(len(items)-1, 0),
		"uri": pageURI(page, token), "first_page_uri": pageURI(0, ""),
		"next_page_uri": next, "previous_page_uri": prev,
	})
}

// judge checks a CreateMessage request the way Twilio does; status 0 means
// accepted.
func (s *Server) judge(r *http.Request, m SentMessage) (status, code int, msg string) {
	switch {
	case !m.BasicAuthOK:
		return http.StatusUnauthorized, 20003, "Authenticate"
	case m.AccountSID != s.accountSID:
		return http.StatusNotFound, 20404, "The requested resource " + r.URL.Path + " was not found"
	case m.To == "":
		return http.StatusBadRequest, 21604, "A 'To' phone number is required."
	case !validPhone(m.To):
		return http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", m.To)
	case m.From == "":
		return http.StatusBadRequest, 21603, "A 'From' phone number is required."
	case protocol.Channel(m.To) != protocol.Channel(m.From):
		return http.StatusBadRequest, 21910, fmt.Sprintf("Invalid From and To pair. From and To should be of the same channel: %s, %s", m.From, m.To)
	case s.isUnsubscribed(m.To):
		return http.StatusBadRequest, 21610, "Attempt to send to unsubscribed recipient"
	case m.Body == "":
		return http.StatusBadRequest, 21602, "Message body is required."
	case utf8.RuneCountInString(m.Body) > 1600:
		return http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit."
	}
	return 0, 0, ""
}

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

func (s *Server) listNumbers(w http.ResponseWriter, r *http.Request) {
	if !s.checkAccount(w, r) {
		return
	}
	want := r.URL.Query().Get("PhoneNumber")
	list := []map[string]any{}
	s.mu.Lock()
	for _, n := range s.numbers {
		if want == "" || n.PhoneNumber == want {
			list = append(list, numberJSON(s.accountSID, n))
		}
	}
	s.mu.Unlock()
	uri := "/2010-04-01/Accounts/" + s.accountSID + "/IncomingPhoneNumbers.json"
	writeJSON(w, http.StatusOK, map[string]any{
		"incoming_phone_numbers": list, "page": 0, "page_size": 50, "start": 0, "end": len(list),
		"uri": uri, "first_page_uri": uri, "next_page_uri": nil, "previous_page_uri": nil,
	})
}

func (s *Server) updateNumber(w http.ResponseWriter, r *http.Request) {
	if !s.checkAccount(w, r) {
		return
	}
	sid, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	if err := r.ParseForm(); !ok || err != nil {
		writeError(w, http.StatusBadRequest, 20001, "Unable to parse request")
		return
	}
	method := r.PostForm.Get("SmsMethod")
	if method != "" && method != "GET" && method != "POST" {
		writeError(w, http.StatusBadRequest, 21601, "SmsMethod must be GET or POST")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.numbers {
		if n.Sid != sid {
			continue
		}
		if v, ok := r.PostForm["SmsUrl"]; ok {
			n.SmsURL = v[0]
		}
		if method != "" {
			n.SmsMethod = method
		}
		writeJSON(w, http.StatusOK, numberJSON(s.accountSID, n))
		return
	}
	writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
}

func numberJSON(account string, n *Number) map[string]any {
	var app any
	if n.SmsAppSid != "" {
		app = n.SmsAppSid
	}
	return map[string]any{
		"sid": n.Sid, "account_sid": account, "phone_number": n.PhoneNumber, "friendly_name": n.PhoneNumber,
		"sms_url": n.SmsURL, "sms_method": n.SmsMethod, "sms_application_sid": app,
		"uri": "/2010-04-01/Accounts/" + account + "/IncomingPhoneNumbers/" + n.Sid + ".json",
	}
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
