// Package sms is the provider-neutral side of outbound SMS: the Sender
// interface the node's dispatcher sends agent replies through, the error
// classification that decides whether a failed send may be retried
// (SendError, IsTemporary), capped exponential backoff with jitter
// (Backoff), sending with retries that looks a message up at the provider
// before repeating a send whose outcome is unknown (Deliver, Finder), and
// the console provider used when no Twilio credentials are configured
// (NewConsole).
//
// Twilio's Messages API, webhook signature checking and the webhook form
// parsers live in the sub-package sms/twilio; a fake Twilio REST API lives
// in sms/twilio/fakeapi (served by sbload) and its test helper in
// sms/twilio/twiliotest.
//
// Concurrency: every Sender in this module is safe for concurrent use.
// Backoff is a plain value; Backoff.Delay is safe for concurrent use as long
// as its Rand function is (the default, math/rand/v2, is). Deliver
// starts no goroutines: it blocks the caller between attempts and returns
// early when the caller's context is cancelled.
package sms
