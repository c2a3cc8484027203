package switchboard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/switchboard/sms/twilio"
)

// registerTimeout bounds the whole registration (lookup and update) so a
// hanging Twilio API cannot keep a goroutine of a running node forever.
const registerTimeout = 30 * time.Second

// webhookURL is the inbound SMS webhook Twilio should call: the public URL
// (which may carry a path prefix) followed by the webhook path.
func (n *Node) webhookURL() string {
	return strings.TrimSuffix(n.opts.PublicURL, "/") + "/sms/twilio"
}

// registerTwilio points the SMS webhook of TWILIO_FROM at the node's public
// URL through Twilio's IncomingPhoneNumbers API (-twilio-register). It needs
// -public-url and the Twilio credentials. It logs the outcome itself: on
// failure an error that says what to do by hand, because the node keeps
// running and still serves a webhook that was set earlier or in the console.
// The error is returned for tests.
func (n *Node) registerTwilio(ctx context.Context) error {
	log := n.logBase.With("component", "twilio-register")
	if n.opts.PublicURL == "" || n.opts.TwilioAccountSID == "" || n.opts.TwilioAuthToken == "" || n.opts.TwilioFrom == "" {
		err := errors.New("-twilio-register needs -public-url, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM")
		log.Error("twilio webhook NOT registered", "err", err)
		return err
	}
	hook := n.webhookURL()
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	err := twilio.RegisterWebhook(ctx, twilio.Config{
		AccountSID: n.opts.TwilioAccountSID,
		AuthToken:  n.opts.TwilioAuthToken,
		From:       n.opts.TwilioFrom,
		APIURL:     n.opts.TwilioAPIURL,
	}, hook)
	if err != nil {
		err = fmt.Errorf("register twilio webhook %s for %s: %w", hook, n.opts.TwilioFrom, err)
		log.Error("twilio webhook NOT registered; the node keeps running: set the number's \"A message comes in\" webhook by hand (HTTP POST)",
			"number", n.opts.TwilioFrom, "url", hook, "err", err)
		return err
	}
	log.Info("twilio webhook registered", "number", n.opts.TwilioFrom, "url", hook)
	return nil
}
