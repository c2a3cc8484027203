package main

import (
	"net/url"

	"github.com/switchboard/switchboard/switchboard/sms/twilio"
)

func twilioSignature(u string, form url.Values) string { return twilio.Signature(authToken, u, form) }

func twilioSignatureFor(u string, form url.Values) string {
	return twilio.Signature(authToken, u, form)
}
