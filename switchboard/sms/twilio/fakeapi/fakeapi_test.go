package fakeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	acct = "AC0123456789abcdef0123456789abcdef"
	tok  = "0123456789abcdef0123456789abcdef"
)

type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func post(t *testing.T, c *http.Client, u, user, pass string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return call(t, c, req, user, pass)
}

// call sends req (with basic auth unless user is empty) and decodes the
// JSON answer.
func call(t *testing.T, c *http.Client, req *http.Request, user, pass string) (int, map[string]any) {
	t.Helper()
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestCreateMessage(t *testing.T) {
	s := NewServer(acct, tok)
	defer s.Close()
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	msgs := s.URL() + "/2010-04-01/Accounts/" + acct + "/Messages.json"
	good := url.Values{"To": {"+15551234567"}, "From": {"+15550001111"}, "Body": {"hi"}}
	tests := []struct {
		name       string
		url        string
		user, pass string
		form       url.Values
		fail       int
		wantStatus int
		wantCode   int
	}{
		{"accepted", msgs, acct, tok, good, 0, 201, 0},
		{"no auth", msgs, "", "", good, 0, 401, 20003},
		{"wrong token", msgs, acct, "nope", good, 0, 401, 20003},
		{"other account in path", strings.Replace(msgs, acct, "ACother", 1), acct, tok, good, 0, 404, 20404},
		{"missing To", msgs, acct, tok, url.Values{"From": {"+15550001111"}, "Body": {"hi"}}, 0, 400, 21604},
		{"bad To", msgs, acct, tok, url.Values{"To": {"555"}, "From": {"+15550001111"}, "Body": {"hi"}}, 0, 400, 21211},
		{"missing From", msgs, acct, tok, url.Values{"To": {"+15551234567"}, "Body": {"hi"}}, 0, 400, 21603},
		{"missing Body", msgs, acct, tok, url.Values{"To": {"+15551234567"}, "From": {"+15550001111"}}, 0, 400, 21602},
		{"Body over 1600 chars", msgs, acct, tok, url.Values{"To": {"+15551234567"}, "From": {"+15550001111"}, "Body": {strings.Repeat("é", 1601)}}, 0, 400, 21617},
		{"injected 429", msgs, acct, tok, good, 429, 429, 20429},
		{"unknown path", s.URL() + "/2010-04-01/Nope", acct, tok, good, 0, 404, 20404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.Sent())
			if tt.fail != 0 {
				s.FailNext(1, tt.fail)
			}
			status, body := post(t, c, tt.url, tt.user, tt.pass, tt.form)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d (%v)", status, tt.wantStatus, body)
			}
			if tt.wantStatus == 201 {
				sid, _ := body["sid"].(string)
				if len(sid) != 34 || !strings.HasPrefix(sid, "SM") || body["status"] != "queued" {
					t.Fatalf("body %v", body)
				}
				return
			}
			if int(body["code"].(float64)) != tt.wantCode || int(body["status"].(float64)) != tt.wantStatus || body["message"] == "" || body["more_info"] == "" {
				t.Fatalf("error body %v, want code %d", body, tt.wantCode)
			}
			if tt.name != "unknown path" && len(s.Sent()) != before+1 {
				t.Fatal("refused request not recorded")
			}
		})
	}
	if n := len(s.Accepted()); n != 1 {
		t.Fatalf("accepted %d, want 1", n)
	}
}

func TestCloseStopsAutoStatus(t *testing.T) {
	// A status receiver that never answers until the test ends: Close must
	// still return, cancelling the pending callback.
	block := make(chan struct{})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer rcv.Close()
	defer close(block)

	s := NewServer(acct, tok)
	s.SetAutoStatus("sent", "delivered")
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	status, _ := post(t, c, s.URL()+"/2010-04-01/Accounts/"+acct+"/Messages.json", acct, tok,
		url.Values{"To": {"+15551234567"}, "From": {"+15550001111"}, "Body": {"hi"}, "StatusCallback": {rcv.URL + "/status"}})
	if status != 201 {
		t.Fatalf("status %d", status)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs on a pending status callback")
	}
}

// get does an authenticated GET and decodes the JSON answer.
func get(t *testing.T, c *http.Client, u, user, pass string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return call(t, c, req, user, pass)
}

// sids returns the sids of a list answer's messages, in order.
func sids(t *testing.T, body map[string]any) []string {
	t.Helper()
	msgs, ok := body["messages"].([]any)
	if !ok {
		t.Fatalf("no messages array in %v", body)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.(map[string]any)["sid"].(string))
	}
	return out
}

func listURL(s *Server, q url.Values) string {
	u := s.URL() + "/2010-04-01/Accounts/" + acct + "/Messages.json"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func TestListMessagesShape(t *testing.T) {
	s := NewServer(acct, tok)
	defer s.Close()
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	msgs := s.URL() + "/2010-04-01/Accounts/" + acct + "/Messages.json"

	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := s.AddMessage(SentMessage{To: "+15551234567", From: "+15550001111", Body: "old", Status: "delivered", Created: base})
	if old.AccountSID != acct || len(old.Sid) != 34 || !strings.HasPrefix(old.Sid, "SM") || !old.BasicAuthOK || old.HTTPStatus != 201 || !old.Created.Equal(base) {
		t.Fatalf("AddMessage = %+v", old)
	}
	if st, _ := post(t, c, msgs, acct, tok, url.Values{"To": {"+15551234567"}, "From": {"+15550001111"}, "Body": {"new"}}); st != 201 {
		t.Fatalf("create = %d", st)
	}
	// Refused and other numbers' messages are not listed.
	post(t, c, msgs, acct, tok, url.Values{"To": {"+15551234567"}, "From": {"+15550001111"}})
	s.AddMessage(SentMessage{To: "+15559990000", From: "+15550001111", Body: "other To", Created: base.Add(time.Minute)})
	s.AddMessage(SentMessage{To: "+15551234567", From: "+15550002222", Body: "other From", Created: base.Add(time.Minute)})
	added := s.AddMessage(SentMessage{To: "+15551234567", From: "+15550001111", Body: "defaults"})
	if added.Status != "queued" || added.Created.IsZero() {
		t.Fatalf("AddMessage defaults = %+v", added)
	}
	created := s.Accepted()[1]
	if created.Body != "new" || created.Status != "queued" || created.Created.IsZero() {
		t.Fatalf("created message = %+v", created)
	}

	status, body := get(t, c, listURL(s, url.Values{"To": {"+15551234567"}, "From": {"+15550001111"}}), acct, tok)
	if status != 200 {
		t.Fatalf("list = %d %v", status, body)
	}
	// Newest first; "new" and "defaults" were both created just now, the
	// later added first when their times are equal.
	got := sids(t, body)
	if len(got) != 3 || got[2] != old.Sid || !(got[0] == added.Sid && got[1] == created.Sid) {
		t.Fatalf("listed %v, want [%s %s %s]", got, added.Sid, created.Sid, old.Sid)
	}
	if body["next_page_uri"] != nil || body["previous_page_uri"] != nil || body["page"] != 0.0 || body["page_size"] != 50.0 ||
		body["start"] != 0.0 || body["end"] != 2.0 {
		t.Fatalf("paging fields of %v", body)
	}
	wantURI := "/2010-04-01/Accounts/" + acct + "/Messages.json?From=%2B15550001111&Page=0&PageSize=50&To=%2B15551234567"
	if body["uri"] != wantURI || body["first_page_uri"] != wantURI {
		t.Fatalf("uri %v, first_page_uri %v, want %s", body["uri"], body["first_page_uri"], wantURI)
	}
	m := body["messages"].([]any)[2].(map[string]any)
	want := map[string]any{
		"sid": old.Sid, "account_sid": acct, "to": "+15551234567", "from": "+15550001111", "body": "old",
		"status": "delivered", "direction": "outbound-api", "date_created": "Sun, 01 Mar 2026 12:00:00 +0000",
		"date_sent": "Sun, 01 Mar 2026 12:00:00 +0000", "error_code": nil,
		"uri": "/2010-04-01/Accounts/" + acct + "/Messages/" + old.Sid + ".json",
	}
	for k, v := range want {
		if m[k] != v {
			t.Fatalf("message %s = %#v, want %#v (%v)", k, m[k], v, m)
		}
	}
	if q := body["messages"].([]any)[1].(map[string]any); q["status"] != "queued" || q["date_sent"] != nil {
		t.Fatalf("queued message %v", q)
	}
	if _, err := time.Parse(time.RFC1123Z, body["messages"].([]any)[1].(map[string]any)["date_created"].(string)); err != nil {
		t.Fatal(err)
	}

	// No filter: every accepted message of the account.
	if _, body := get(t, c, listURL(s, nil), acct, tok); len(sids(t, body)) != 5 {
		t.Fatalf("unfiltered list %v", sids(t, body))
	}
}

func TestListMessagesStatus(t *testing.T) {
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer rcv.Close()
	s := NewServer(acct, tok)
	defer s.Close()
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	m := s.AddMessage(SentMessage{To: "+15551234567", From: "+15550001111", Body: "hi"})
	if err := s.SendStatus(rcv.URL, m.Sid, "undelivered"); err != nil {
		t.Fatal(err)
	}
	if got := s.Sent()[0].Status; got != "undelivered" {
		t.Fatalf("Status after SendStatus = %q", got)
	}
	_, body := get(t, c, listURL(s, nil), acct, tok)
	msg := body["messages"].([]any)[0].(map[string]any)
	if msg["status"] != "undelivered" || msg["error_code"] != 30003.0 {
		t.Fatalf("listed %v", msg)
	}
}

func TestListMessagesPaging(t *testing.T) {
	s := NewServer(acct, tok)
	defer s.Close()
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	base := time.Now().Add(-time.Hour)
	var want []string // newest first
	for i := range 5 {
		m := s.AddMessage(SentMessage{To: "+15551234567", From: "+15550001111", Body: "m", Created: base.Add(time.Duration(i) * time.Second)})
		want = append([]string{m.Sid}, want...)
	}
	var got []string
	next := listURL(s, url.Values{"To": {"+15551234567"}, "PageSize": {"2"}})
	var prev any
	for page := 0; ; page++ {
		status, body := get(t, c, next, acct, tok)
		if status != 200 || body["page"] != float64(page) || body["page_size"] != 2.0 {
			t.Fatalf("page %d: %d %v", page, status, body)
		}
		got = append(got, sids(t, body)...)
		if page == 0 {
			// A message created while paging goes first and does not shift
			// the next pages.
			s.AddMessage(SentMessage{To: "+15551234567", From: "+15550001111", Body: "late"})
		}
		if page == 2 {
			prev = body["previous_page_uri"]
		}
		if body["next_page_uri"] == nil {
			if page != 2 {
				t.Fatalf("last page is %d, want 2", page)
			}
			break
		}
		if !strings.Contains(body["next_page_uri"].(string), "PageToken=PA") {
			t.Fatalf("next_page_uri %v", body["next_page_uri"])
		}
		next = s.URL() + body["next_page_uri"].(string)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paged %v, want %v", got, want)
	}
	// previous_page_uri of the last page gives the middle page back.
	_, body := get(t, c, s.URL()+prev.(string), acct, tok)
	if p := sids(t, body); len(p) != 2 || p[0] != want[2] || p[1] != want[3] {
		t.Fatalf("previous page %v, want %v", p, want[2:4])
	}
	// A page past the end is empty, however far.
	for _, p := range []string{"3", "9223372036854775807"} {
		status, body := get(t, c, listURL(s, url.Values{"PageSize": {"2"}, "Page": {p}}), acct, tok)
		if status != 200 || len(sids(t, body)) != 0 || body["next_page_uri"] != nil {
			t.Fatalf("page %s: %d %v", p, status, body)
		}
	}
	// Page without a token is an offset.
	_, body = get(t, c, listURL(s, url.Values{"PageSize": {"2"}, "Page": {"1"}}), acct, tok)
	if p := sids(t, body); len(p) != 2 || p[0] != want[1] || p[1] != want[2] {
		t.Fatalf("page 1 by offset %v, want %v (after the late message)", p, want[1:3])
	}
}

func TestListMessagesErrors(t *testing.T) {
	s := NewServer(acct, tok)
	defer s.Close()
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	list := listURL(s, nil)
	tests := []struct {
		name       string
		url        string
		user, pass string
		fail       int
		wantStatus int
		wantCode   int
	}{
		{"no auth", list, "", "", 0, 401, 20003},
		{"wrong token", list, acct, "nope", 0, 401, 20003},
		{"other account in path", strings.Replace(list, acct, "ACother", 1), acct, tok, 0, 404, 20404},
		{"PageSize 0", listURL(s, url.Values{"PageSize": {"0"}}), acct, tok, 0, 400, 20001},
		{"PageSize over 1000", listURL(s, url.Values{"PageSize": {"1001"}}), acct, tok, 0, 400, 20001},
		{"PageSize not a number", listURL(s, url.Values{"PageSize": {"x"}}), acct, tok, 0, 400, 20001},
		{"negative Page", listURL(s, url.Values{"Page": {"-1"}}), acct, tok, 0, 400, 20001},
		{"unknown PageToken", listURL(s, url.Values{"Page": {"1"}, "PageToken": {"PASMnope"}}), acct, tok, 0, 400, 20001},
		{"injected 503", list, acct, tok, 503, 503, 20503},
		{"PageSize 1000", listURL(s, url.Values{"PageSize": {"1000"}}), acct, tok, 0, 200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fail != 0 {
				s.FailListNext(1, tt.fail)
			}
			status, body := get(t, c, tt.url, tt.user, tt.pass)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d (%v)", status, tt.wantStatus, body)
			}
			if tt.wantStatus == 200 {
				return
			}
			if int(body["code"].(float64)) != tt.wantCode || int(body["status"].(float64)) != tt.wantStatus || body["message"] == "" {
				t.Fatalf("error body %v, want code %d", body, tt.wantCode)
			}
		})
	}
	// FailListNext counts requests and leaves CreateMessage alone.
	s.FailListNext(2, 500)
	msgs := s.URL() + "/2010-04-01/Accounts/" + acct + "/Messages.json"
	if st, _ := post(t, c, msgs, acct, tok, url.Values{"To": {"+15551234567"}, "From": {"+15550001111"}, "Body": {"hi"}}); st != 201 {
		t.Fatalf("create = %d", st)
	}
	for i, want := range []int{500, 500, 200} {
		if st, _ := get(t, c, list, acct, tok); st != want {
			t.Fatalf("list %d = %d, want %d", i, st, want)
		}
	}
}

// rewrite sends twilio-go's requests for api.twilio.com to the fake.
type rewrite struct{ base string }

func (rw rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	u, _ := url.Parse(rw.base)
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, ""
	return http.DefaultTransport.RoundTrip(r)
}

// TestListMessagesTwilioGo reads the list with twilio-go's own paging
// (ListMessage follows next_page_uri), so the fake's shape is the one it
// decodes.
func TestListMessagesTwilioGo(t *testing.T) {
	s := NewServer(acct, tok)
	defer s.Close()
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	var want []string
	for i := range 5 {
		m := s.AddMessage(SentMessage{To: "+15551234567", From: "+15550001111", Body: "hi", Created: time.Now().Add(time.Duration(i-10) * time.Second)})
		want = append([]string{m.Sid}, want...)
	}
	s.AddMessage(SentMessage{To: "+15559990000", From: "+15550001111", Body: "hi"})
	c := &client.Client{Credentials: client.NewCredentials(acct, tok), HTTPClient: &http.Client{Transport: rewrite{s.URL()}}}
	c.SetAccountSid(acct)
	api := openapi.NewApiService(&client.RequestHandler{Client: c})
	to, pageSize := "+15551234567", 2
	got, err := api.ListMessage(&openapi.ListMessageParams{To: &to, PageSize: &pageSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("twilio-go listed %d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		if *m.Sid != want[i] || *m.Body != "hi" || *m.To != to || *m.Status != "queued" || m.DateCreated == nil {
			t.Fatalf("message %d = %+v, want sid %s", i, m, want[i])
		}
	}
	// A refusal decodes into twilio-go's error.
	s.FailListNext(1, 429)
	_, err = api.ListMessage(&openapi.ListMessageParams{To: &to})
	if e, ok := err.(*client.TwilioRestError); !ok || e.Status != 429 || e.Code != 20429 {
		t.Fatalf("err = %#v, want TwilioRestError 429", err)
	}
}

func TestHoldAnswers(t *testing.T) {
	s := NewServer(acct, tok)
	defer s.Close()
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	msgs := s.URL() + "/2010-04-01/Accounts/" + acct + "/Messages.json"
	form := url.Values{"To": {"+15551234567"}, "From": {"+15550001111"}, "Body": {"hi"}}

	// Held until the client gives up: the message is recorded, the client
	// gets no answer.
	s.HoldAnswers(1, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, msgs, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(acct, tok)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	acc := awaitAccepted(t, s, 1)
	if acc[0].Sid == "" || acc[0].Status != "queued" {
		t.Fatalf("held message recorded as %+v", acc[0])
	}
	select {
	case err := <-done:
		t.Fatalf("answer not held: %v", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("held request ended with %v, want context.Canceled", err)
	}

	// Refused requests do not use up a hold; a hold with a duration
	// answers after it.
	const d = 50 * time.Millisecond
	s.HoldAnswers(1, d)
	if st, _ := post(t, c, msgs, acct, "nope", form); st != 401 {
		t.Fatalf("refused = %d", st)
	}
	start := time.Now()
	if st, body := post(t, c, msgs, acct, tok, form); st != 201 || body["sid"] != s.Accepted()[1].Sid {
		t.Fatalf("held create = %d %v", st, body)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("answered after %v, held for %v", el, d)
	}
	// The hold is used up.
	if st, _ := post(t, c, msgs, acct, tok, form); st != 201 {
		t.Fatalf("create = %d", st)
	}
}

func TestCloseEndsHeldAnswers(t *testing.T) {
	s := NewServer(acct, tok)
	s.HoldAnswers(1, 0)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/2010-04-01/Accounts/"+acct+"/Messages.json",
			strings.NewReader(url.Values{"To": {"+15551234567"}, "From": {"+15550001111"}, "Body": {"hi"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(acct, tok)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	awaitAccepted(t, s, 1)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs on a held answer")
	}
}

// awaitAccepted waits up to a minute for n accepted messages.
func awaitAccepted(t *testing.T, s *Server, n int) []SentMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := s.AwaitAccepted(ctx, n)
	if err != nil {
		t.Fatalf("%d accepted messages, want %d: %v", len(got), n, err)
	}
	return got
}

// TestAwait: AwaitSent wakes when a request is recorded (refused ones count
// for Sent, not for Accepted) and gives up with ctx's error.
func TestAwait(t *testing.T) {
	s := New(acct, tok)
	defer s.Close()
	done := make(chan []SentMessage)
	go func() {
		got, err := s.AwaitAccepted(context.Background(), 2)
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	s.AddMessage(SentMessage{To: "+15551234567", From: "+15550000000", Body: "one"})
	s.AddMessage(SentMessage{To: "+15551234567", From: "+15550000000", Body: "two"})
	if got := <-done; len(got) != 2 || got[1].Body != "two" {
		t.Fatalf("AwaitAccepted = %+v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := s.AwaitSent(ctx, 3)
	if !errors.Is(err, context.Canceled) || len(got) != 2 {
		t.Fatalf("AwaitSent with a done context = %d messages, %v", len(got), err)
	}
}

// TestAutoStatusReusesConnections: the fake's status callbacks carry the
// message's To and From and reuse their connections, like Twilio's; a new
// connection per callback would cost a benchmark's node an accept each.
func TestAutoStatusReusesConnections(t *testing.T) {
	var mu sync.Mutex
	var conns int
	forms := map[string][]string{} // MessageSid -> "status to from"
	rcv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		sid := r.PostForm.Get("MessageSid")
		forms[sid] = append(forms[sid], r.PostForm.Get("MessageStatus")+" "+r.PostForm.Get("To")+" "+r.PostForm.Get("From"))
		mu.Unlock()
		w.Write([]byte("<Response/>")) // an answer body the fake must read to reuse the connection
	}))
	rcv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	rcv.Start()
	defer rcv.Close()
	s := NewServer(acct, tok)
	defer s.Close()
	s.SetAutoStatus("sent", "delivered")
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	const n = 20
	for i := range n {
		to := fmt.Sprintf("+1555123%04d", i)
		status, body := post(t, c, s.URL()+"/2010-04-01/Accounts/"+acct+"/Messages.json", acct, tok,
			url.Values{"To": {to}, "From": {"+15550001111"}, "Body": {"hi"}, "StatusCallback": {rcv.URL + "/status"}})
		if status != 201 {
			t.Fatalf("status %d", status)
		}
		sid := body["sid"].(string)
		// One message at a time: its two callbacks are done before the next.
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			got := append([]string(nil), forms[sid]...)
			mu.Unlock()
			if len(got) == 2 {
				want := []string{"sent " + to + " +15550001111", "delivered " + to + " +15550001111"}
				if got[0] != want[0] || got[1] != want[1] {
					t.Fatalf("callbacks of %s = %q, want %q", sid, got, want)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("callbacks of %s = %q after 5s", sid, got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if errs := s.StatusErrors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	mu.Lock()
	defer mu.Unlock()
	// One connection, and now and then another: a callback can start before
	// the connection the one before it used is back in the pool.
	if conns > 4 {
		t.Fatalf("%d connections for %d sequential callbacks, want them reused (at most 4)", conns, 2*n)
	}
}
