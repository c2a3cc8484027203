package twiliotest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

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
