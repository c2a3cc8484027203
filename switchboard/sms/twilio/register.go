package twilio

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// ErrNumberNotFound: the account has no incoming phone number equal to
// TWILIO_FROM, so there is no webhook to set.
var ErrNumberNotFound = errors.New("twilio: number not found among the account's incoming phone numbers")

// RegisterWebhook points the SMS webhook of our number (cfg.From) at smsURL
// with method POST, through the IncomingPhoneNumbers API: it looks the
// number up by PhoneNumber, then updates its SmsUrl and SmsMethod. It is
// for the opt-in -twilio-register at start. Errors say which step failed;
// API refusals carry an *sms.SendError with Twilio's status and code.
func RegisterWebhook(ctx context.Context, cfg Config, smsURL string) error {
	u, err := url.Parse(smsURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("twilio: register webhook: %q is not an absolute http(s) URL", smsURL)
	}
	s, err := NewSender(cfg)
	if err != nil {
		return fmt.Errorf("twilio: register webhook: %w", err)
	}
	defer s.Close()

	from, pageSize := s.cfg.From, 20
	api, call, cancel := s.service(ctx)
	// One page, not ListIncomingPhoneNumber: that streams pages from a
	// goroutine with no way to stop it. The filter leaves few matches.
	page, err := api.PageIncomingPhoneNumber(&openapi.ListIncomingPhoneNumberParams{PhoneNumber: &from, PageSize: &pageSize}, "", "")
	cancel()
	if err != nil {
		return fmt.Errorf("twilio: register webhook: look up %s: %w", from, s.classify(ctx, call, err))
	}
	var sid, appSid string
	for _, n := range page.IncomingPhoneNumbers {
		if deref(n.PhoneNumber) == from {
			sid, appSid = deref(n.Sid), deref(n.SmsApplicationSid)
			break
		}
	}
	switch {
	case sid == "":
		return fmt.Errorf("%w: %s (account %s)", ErrNumberNotFound, from, s.cfg.AccountSID)
	case !alnum(sid):
		return fmt.Errorf("twilio: register webhook: look up %s: odd number sid %q", from, sid)
	case appSid != "":
		// Twilio ignores SmsUrl while an application is attached; setting
		// it would look like success and change nothing.
		return fmt.Errorf("twilio: register webhook: %s uses SMS application %s, so Twilio would ignore SmsUrl; detach it in the console or set the application's URL to %s", from, appSid, smsURL)
	}

	method := "POST"
	api, call, cancel = s.service(ctx)
	defer cancel()
	got, err := api.UpdateIncomingPhoneNumber(sid, &openapi.UpdateIncomingPhoneNumberParams{SmsUrl: &smsURL, SmsMethod: &method})
	if err != nil {
		return fmt.Errorf("twilio: register webhook: update %s (%s): %w", from, sid, s.classify(ctx, call, err))
	}
	if got := deref(got.SmsUrl); got != "" && got != smsURL {
		return fmt.Errorf("twilio: register webhook: update %s (%s): Twilio kept SmsUrl %q", from, sid, got)
	}
	return nil
}
