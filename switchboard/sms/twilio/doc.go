// Package twilio is Switchboard's Twilio integration:
//
//   - Validator checks the X-Twilio-Signature of webhooks (HMAC-SHA1 over
//     the public URL and the sorted POST parameters, constant-time compare,
//     failing closed) and reconstructs the signed URL behind proxies.
//   - ParseInbound and ParseStatus turn the webhook forms of an inbound SMS
//     and of a delivery-status callback into checked values; MapStatus maps
//     Twilio's message statuses onto protocol.Status.
//   - Sender implements sms.Sender with twilio-go's Messages API
//     (Api.CreateMessage), pointed at Config.APIURL when set so that tests
//     and load runs talk to the fake in sub-package fakeapi on loopback.
//     Its errors say when a request was written but not answered
//     (SendError.MaybeSent), and it implements sms.Finder (Find, with
//     Api.PageMessage) to look such a message up before sending it again.
//   - RegisterWebhook points the SMS webhook of our number at the node.
//
// Concurrency: Validator, Sender and the parse functions are safe for
// concurrent use. Validator and Config are plain values and must not be
// modified while in use. Sender starts no goroutines; Close releases its
// idle connections.
package twilio
