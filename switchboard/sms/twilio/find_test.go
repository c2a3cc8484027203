package twilio_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms"
	"github.com/switchboard/switchboard/switchboard/sms/twilio"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
)

const customer = "+15551234567"

// sentOf is what Find should report for a message of the fake.
func sentOf(m twiliotest.SentMessage, status protocol.Status) sms.Sent {
	return sms.Sent{ProviderID: m.Sid, Status: status, Created: m.Created.Truncate(time.Second).UTC()}
}

func checkFound(t *testing.T, got []sms.Sent, err error, want ...sms.Sent) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("found %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i].ProviderID != want[i].ProviderID || got[i].Status != want[i].Status || !got[i].Created.Equal(want[i].Created) ||
			got[i].Created.Location() != time.UTC {
			t.Fatalf("found %+v, want %+v", got, want)
		}
	}
}

func TestFind(t *testing.T) {
	fake := newFake(t)
	s := newSender(t, fake.URL())
	since := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(d time.Duration) time.Time { return since.Add(d) }
	add := func(to, from, body, status string, created time.Time) twiliotest.SentMessage {
		return fake.AddMessage(twiliotest.SentMessage{To: to, From: from, Body: body, Status: status, Created: created})
	}
	first := add(customer, ourNum, "Yes, in stock", "delivered", at(10*time.Second))
	trial := add(customer, ourNum, twilio.TrialPrefix+"Yes, in stock", "sent", at(20*time.Second))
	add("+15559990000", ourNum, "Yes, in stock", "sent", at(15*time.Second)) // other To
	otherFrom := add(customer, "+15550002222", "Yes, in stock", "failed", at(15*time.Second))
	add(customer, ourNum, "Yes, in stock!", "sent", at(15*time.Second))          // other body
	add(customer, ourNum, "Yes, in stock ", "sent", at(15*time.Second))          // other body
	add(customer, ourNum, "Yes, in stock", "delivered", at(-time.Second))        // before since
	odd := add(customer, ourNum, "Yes, in stock", "someday", at(30*time.Second)) // unknown status
	res, err := s.Send(context.Background(), sms.Outgoing{ID: "m", To: customer, Body: "Yes, in stock"})
	if err != nil {
		t.Fatal(err)
	}
	sent := fake.Accepted()[len(fake.Accepted())-1]
	if sent.Sid != res.ProviderID {
		t.Fatalf("last accepted %+v, sent %+v", sent, res)
	}

	m := sms.Outgoing{ID: "m", To: customer, Body: "Yes, in stock"}
	got, err := s.Find(context.Background(), m, since)
	checkFound(t, got, err,
		sentOf(sent, protocol.StatusQueued), sentOf(odd, protocol.StatusQueued),
		sentOf(trial, protocol.StatusSent), sentOf(first, protocol.StatusDelivered))

	t.Run("since excludes older", func(t *testing.T) {
		got, err := s.Find(context.Background(), m, at(20*time.Second))
		checkFound(t, got, err, sentOf(sent, protocol.StatusQueued), sentOf(odd, protocol.StatusQueued), sentOf(trial, protocol.StatusSent))
	})
	t.Run("since counts whole seconds like Twilio", func(t *testing.T) {
		// trial was created at since+20s exactly, so since+20.9s still
		// finds it: Twilio's dates have no fraction.
		got, err := s.Find(context.Background(), m, at(20*time.Second+900*time.Millisecond))
		checkFound(t, got, err, sentOf(sent, protocol.StatusQueued), sentOf(odd, protocol.StatusQueued), sentOf(trial, protocol.StatusSent))
	})
	t.Run("explicit From", func(t *testing.T) {
		m := m
		m.From = "+15550002222"
		got, err := s.Find(context.Background(), m, since)
		checkFound(t, got, err, sentOf(otherFrom, protocol.StatusFailed))
	})
	t.Run("nothing sent", func(t *testing.T) {
		m := m
		m.Body = "never sent"
		got, err := s.Find(context.Background(), m, since)
		checkFound(t, got, err)
	})
	t.Run("status follows callbacks", func(t *testing.T) {
		rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		defer rcv.Close()
		if err := fake.SendStatus(rcv.URL, sent.Sid, "delivered"); err != nil {
			t.Fatal(err)
		}
		got, err := s.Find(context.Background(), m, at(25*time.Second))
		checkFound(t, got, err, sentOf(sent, protocol.StatusDelivered), sentOf(odd, protocol.StatusQueued))
	})
	t.Run("no To", func(t *testing.T) {
		_, err := s.Find(context.Background(), sms.Outgoing{ID: "x", Body: "hi"}, since)
		if se := sendError(t, err); se.Temporary {
			t.Fatalf("SendError = %+v, want permanent", se)
		}
	})
}

// countingFake serves fake behind a handler that counts list requests and
// may run a hook before each.
func countingFake(t *testing.T, fake *twiliotest.Server, before func(n int64)) (string, *atomic.Int64) {
	t.Helper()
	var lists atomic.Int64
	h := fake.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/Messages.json") {
			n := lists.Add(1)
			if before != nil {
				before(n)
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &lists
}

func TestFindPaging(t *testing.T) {
	fake := twiliotest.New(account, token)
	t.Cleanup(fake.Close)
	u, lists := countingFake(t, fake, nil)
	s := newSender(t, u)
	twilio.SetFindPaging(s, 2, 10)
	since := time.Now().Add(-time.Hour).Truncate(time.Second)
	// Newest first: 12 messages at or after since, 6 of them matching
	// (pages 1 to 6), then 3 older matching ones (pages 7 and 8). Reading
	// stops after page 7, the first holding an older message.
	var want []sms.Sent
	for i := 14; i >= 0; i-- {
		created := since.Add(time.Duration(i-3) * time.Second)
		body := "other"
		if i%2 == 0 || i < 3 {
			body = "hello"
		}
		m := fake.AddMessage(twiliotest.SentMessage{To: customer, From: ourNum, Body: body, Status: "sent", Created: created})
		if body == "hello" && i >= 3 {
			want = append(want, sentOf(m, protocol.StatusSent))
		}
	}
	if len(want) != 6 {
		t.Fatalf("test setup: %d matches", len(want))
	}
	got, err := s.Find(context.Background(), sms.Outgoing{ID: "p", To: customer, Body: "hello"}, since)
	checkFound(t, got, err, want...)
	if n := lists.Load(); n != 7 {
		t.Fatalf("read %d pages, want 7", n)
	}

	t.Run("page cap", func(t *testing.T) {
		lists.Store(0)
		twilio.SetFindPaging(s, 2, 3) // 6 messages; since reaches past them
		_, err := s.Find(context.Background(), sms.Outgoing{ID: "p", To: customer, Body: "hello"}, since)
		se := sendError(t, err)
		if se.Temporary || !strings.Contains(se.Message, "more than 3 pages") {
			t.Fatalf("SendError = %+v, want permanent page cap", se)
		}
		if n := lists.Load(); n != 3 {
			t.Fatalf("read %d pages, want 3", n)
		}
	})
	t.Run("last page within the cap", func(t *testing.T) {
		twilio.SetFindPaging(s, 5, 3) // 15 messages: exactly 3 pages
		got, err := s.Find(context.Background(), sms.Outgoing{ID: "p", To: customer, Body: "hello"}, since.Add(-time.Hour))
		if err != nil || len(got) != 9 {
			t.Fatalf("found %d, err %v; want all 9 matches", len(got), err)
		}
	})
	t.Run("page failure is the answer", func(t *testing.T) {
		// The second page fails: no partial answer.
		f := twiliotest.New(account, token)
		t.Cleanup(f.Close)
		for range 4 {
			f.AddMessage(twiliotest.SentMessage{To: customer, From: ourNum, Body: "hello"})
		}
		u, _ := countingFake(t, f, func(n int64) {
			if n == 2 {
				f.FailListNext(1, 500)
			}
		})
		s := newSender(t, u)
		twilio.SetFindPaging(s, 2, 10)
		got, err := s.Find(context.Background(), sms.Outgoing{ID: "p", To: customer, Body: "hello"}, since)
		if se := sendError(t, err); got != nil || !se.Temporary || se.StatusCode != 500 || se.Code != 20500 {
			t.Fatalf("Find = %v, %+v; want temporary 500 and nothing", got, se)
		}
	})
}

func TestFindErrors(t *testing.T) {
	m := sms.Outgoing{ID: "e", To: customer, Body: "hi"}
	since := time.Now().Add(-time.Hour)
	t.Run("list fails: temporary, then works", func(t *testing.T) {
		for _, status := range []int{500, 503, 429} {
			fake := newFake(t)
			fake.AddMessage(twiliotest.SentMessage{To: customer, From: ourNum, Body: "hi"})
			s := newSender(t, fake.URL())
			fake.FailListNext(1, status)
			_, err := s.Find(context.Background(), m, since)
			if se := sendError(t, err); !se.Temporary || se.StatusCode != status || se.Code != 20000+status || se.MaybeSent || !sms.IsTemporary(err) {
				t.Fatalf("SendError = %+v, want temporary %d", se, status)
			}
			if got, err := s.Find(context.Background(), m, since); err != nil || len(got) != 1 {
				t.Fatalf("retry found %v, %v", got, err)
			}
		}
	})
	t.Run("wrong token: permanent", func(t *testing.T) {
		fake := newFake(t)
		s := newSender(t, fake.URL(), func(c *twilio.Config) { c.AuthToken = "wrongtoken" })
		_, err := s.Find(context.Background(), m, since)
		if se := sendError(t, err); se.Temporary || se.StatusCode != 401 || se.Code != 20003 {
			t.Fatalf("SendError = %+v, want permanent 401", se)
		}
	})
	t.Run("network error: temporary", func(t *testing.T) {
		fake := twiliotest.NewServer(account, token)
		url := fake.URL()
		fake.Close()
		_, err := newSender(t, url).Find(context.Background(), m, since)
		if se := sendError(t, err); !se.Temporary || se.StatusCode != 0 || se.MaybeSent {
			t.Fatalf("SendError = %+v, want temporary without status", se)
		}
	})
	t.Run("timeout: temporary", func(t *testing.T) {
		release := make(chan struct{})
		u := stub(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		defer close(release)
		s := newSender(t, u, func(c *twilio.Config) { c.Timeout = 50 * time.Millisecond })
		_, err := s.Find(context.Background(), m, since)
		if se := sendError(t, err); !se.Temporary || se.MaybeSent {
			t.Fatalf("SendError = %+v, want temporary, MaybeSent false", se)
		}
	})
	t.Run("caller cancel: permanent", func(t *testing.T) {
		fake := newFake(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newSender(t, fake.URL()).Find(ctx, m, since)
		if se := sendError(t, err); se.Temporary || sms.IsTemporary(err) {
			t.Fatalf("SendError = %+v, want permanent", se)
		}
	})

	page := func(messages, next string) string {
		return `{"messages":[` + messages + `],"page":0,"page_size":50,"next_page_uri":` + next + `,"uri":"/x"}`
	}
	msg := func(body, date string) string {
		return `{"sid":"SM1","to":"` + customer + `","from":"` + ourNum + `","body":"` + body + `","status":"sent","date_created":"` + date + `"}`
	}
	now := time.Now().UTC().Format(time.RFC1123Z)
	tests := []struct {
		name   string
		answer string
		want   string // substring of the error; "" = found 1
	}{
		{"unreadable date on a match", page(msg("hi", "yesterday"), "null"), "unreadable date_created"},
		{"zone name on a match", page(msg("hi", "Wed, 18 Aug 2010 20:01:40 EST"), "null"), "unreadable date_created"},
		{"unreadable date elsewhere is skipped", page(msg("other", "yesterday")+","+msg("hi", now), "null"), ""},
		{"next_page_uri without a page", page(msg("hi", now), `"/2010-04-01/Accounts/AC1/Messages.json?To=x"`), "next_page_uri"},
		{"not JSON", "{not json", "unreadable answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := stub(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(tt.answer))
			})
			got, err := newSender(t, u).Find(context.Background(), m, since)
			if tt.want == "" {
				if err != nil || len(got) != 1 || got[0].ProviderID != "SM1" || got[0].Status != protocol.StatusSent {
					t.Fatalf("Find = %+v, %v", got, err)
				}
				return
			}
			if se := sendError(t, err); se.Temporary || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Find = %+v, %v; want permanent error about %s", got, err, tt.want)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	want := time.Date(2010, 8, 18, 20, 1, 40, 0, time.UTC)
	tests := []struct {
		in string
		ok bool
	}{
		{"Wed, 18 Aug 2010 20:01:40 +0000", true},
		{"Wed, 18 Aug 2010 22:01:40 +0200", true},
		{"Wed, 18 Aug 2010 15:01:40 -0500", true},
		{"Wed, 18 Aug 2010 20:01:40 GMT", true},
		{"Wed, 18 Aug 2010 20:01:40 UTC", true},
		{"Wed, 18 Aug 2010 20:01:40 EST", false},
		{"Wed, 18 Aug 2010 20:01:40 GMT+3", false},
		{"Wed, 18 Aug 2010 20:01:40", false},
		{"2010-08-18T20:01:40Z", false},
		{"", false},
		{"Wed, 18 Aug 2010 20:01:40 +0000" + strings.Repeat(" ", 64), false},
	}
	for _, tt := range tests {
		got, err := twilio.ParseDate(tt.in)
		if tt.ok != (err == nil) || (tt.ok && (!got.Equal(want) || got.Location() != time.UTC)) {
			t.Errorf("ParseDate(%q) = %v, %v; want ok=%v", tt.in, got, err, tt.ok)
		}
	}
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{
		"Wed, 18 Aug 2010 20:01:40 +0000", "Sun, 01 Mar 2026 12:00:00 -0930", "Wed, 18 Aug 2010 20:01:40 GMT",
		"Wed, 18 Aug 2010 20:01:40 UTC", "Wed, 18 Aug 2010 20:01:40 EST", "Wed, 18 Aug 2010 20:01:40 GMT-11",
		"Mon, 31 Feb 2010 24:00:00 +0000", "Fri, 01 Jan 0000 00:00:00 +9999", "", "yesterday",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := twilio.ParseDate(s)
		if err != nil {
			return
		}
		if len(s) > 64 || got.Location() != time.UTC {
			t.Fatalf("ParseDate(%q) = %v accepted", s, got)
		}
		// What it accepts is a real instant that reads back the same.
		again, err := twilio.ParseDate(got.Format(time.RFC1123Z))
		if err != nil || !again.Equal(got) {
			t.Fatalf("ParseDate(%q) = %v, read back as %v, %v", s, got, again, err)
		}
	})
}
