package twilio

import (
	"context"
	"fmt"
	"net/url"
	"time"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms"
)

// Paging of Find: pages of FindPageSize messages, at most FindMaxPages of
// them, so one lookup sees the newest 1000 messages to a customer from our
// number.
const (
	FindPageSize = 50
	FindMaxPages = 20
)

// TrialPrefix is what Twilio puts before the body of every message sent
// from a trial account. Find matches bodies with and without it.
const TrialPrefix = "Sent from your Twilio trial account - "

var _ sms.Finder = (*Sender)(nil)

// Find looks up the messages Twilio holds to m.To from m.From (cfg.From
// when empty) whose body is m.Body, with or without TrialPrefix, created at
// or after since, newest first. It implements sms.Finder.
//
// It lists the Messages resource (To and From filters, FindPageSize a
// page), newest first, without a DateSent filter since a queued message
// has no date_sent yet. It reads pages until one holds a message created
// before since or there are no more, and fails after FindMaxPages pages:
// the answer is then unknown, not "none". Twilio's dates count whole
// seconds, so since is taken down to its second; Twilio's clock is not
// ours, so callers should leave a margin for skew.
//
// Each page is one request bounded by Config.Timeout. The error is always a
// *sms.SendError, classified like Send's: temporary for network errors,
// timeouts, HTTP 5xx and 429, so the lookup may be retried; permanent for
// other refusals, the caller's cancellation, an answer that cannot be read
// (a matching message without a readable date_created included), and the
// page cap. MaybeSent is never set: a lookup sends nothing.
func (s *Sender) Find(ctx context.Context, m sms.Outgoing, since time.Time) ([]sms.Sent, error) {
	from := m.From
	if from == "" {
		from = s.cfg.From
	}
	if m.To == "" {
		return nil, &sms.SendError{Message: "message " + m.ID + " has no To number to look up"}
	}
	since = since.Truncate(time.Second)
	pageSize := s.findPageSize
	params := &openapi.ListMessageParams{}
	params.SetTo(m.To).SetFrom(from).SetPageSize(pageSize)

	var found []sms.Sent
	token, page := "", ""
	for range s.findMaxPages {
		resp, err := s.findPage(ctx, params, token, page)
		if err != nil {
			return nil, err
		}
		older := false
		for _, msg := range resp.Messages {
			body := deref(msg.Body)
			match := body == m.Body || body == TrialPrefix+m.Body
			created, err := parseDate(deref(msg.DateCreated))
			if err != nil {
				if match {
					return nil, &sms.SendError{StatusCode: 200, Message: fmt.Sprintf("message lookup: %s has an unreadable date_created", deref(msg.Sid)), Err: err}
				}
				continue
			}
			if created.Before(since) {
				// Newest first: the next pages are older still. The rest
				// of this page is checked anyway; it costs nothing and
				// does not rely on the order within a page.
				older = true
				continue
			}
			if !match {
				continue
			}
			status, ok := MapStatus(deref(msg.Status))
			if !ok {
				status = protocol.StatusQueued
			}
			found = append(found, sms.Sent{ProviderID: deref(msg.Sid), Status: status, Created: created})
		}
		next := deref(resp.NextPageUri)
		if older || next == "" {
			return found, nil
		}
		if token, page, err = nextPage(next); err != nil {
			return nil, &sms.SendError{StatusCode: 200, Message: "message lookup: unreadable next_page_uri", Err: err}
		}
	}
	return nil, &sms.SendError{Message: fmt.Sprintf("message lookup: more than %d pages of %d messages to %s since %s; answer unknown",
		s.findMaxPages, pageSize, m.To, since.UTC().Format(time.RFC3339))}
}

// findPage reads one page of the Messages list in its own call.
func (s *Sender) findPage(ctx context.Context, params *openapi.ListMessageParams, token, page string) (*openapi.ListMessageResponse, error) {
	api, call, cancel := s.service(ctx)
	defer cancel()
	resp, err := api.PageMessage(params, token, page)
	if err != nil {
		se := s.classify(ctx, call, err)
		if call.status/100 == 2 && !se.Temporary {
			se.Message = "message lookup: unreadable answer"
		}
		return nil, se
	}
	return resp, nil
}

// nextPage takes the Page and PageToken parameters out of a next_page_uri
// ("/2010-04-01/Accounts/AC.../Messages.json?To=...&PageSize=50&Page=1&PageToken=PASM..."),
// to ask for the next page with the same filters through PageMessage.
func nextPage(uri string) (token, page string, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", "", err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", "", err
	}
	token, page = q.Get("PageToken"), q.Get("Page")
	if token == "" && page == "" {
		return "", "", fmt.Errorf("%q has neither Page nor PageToken", snippet([]byte(uri)))
	}
	return token, page, nil
}

// maxDateLen bounds the dates parseDate reads; Twilio's are 31 bytes.
const maxDateLen = 64

// parseDate reads one of Twilio's RFC 2822 dates, "Wed, 18 Aug 2010
// 20:01:40 +0000" (RFC 1123 with a numeric zone); "GMT" or "UTC" in place
// of the numeric zone is accepted too. Other zone names are refused: Go
// would read them as an unknown zone at offset zero.
func parseDate(s string) (time.Time, error) {
	if len(s) > maxDateLen {
		return time.Time{}, fmt.Errorf("date of %d bytes", len(s))
	}
	if t, err := time.Parse(time.RFC1123Z, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.RFC1123, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q is not RFC 1123: %w", s, err)
	}
	if zone, offset := t.Zone(); (zone != "GMT" && zone != "UTC") || offset != 0 {
		return time.Time{}, fmt.Errorf("date %q: zone %q is not numeric, GMT or UTC", s, zone)
	}
	return t.UTC(), nil
}
