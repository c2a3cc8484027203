package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Consent: whether a customer opted out of messages (issue 19). It changes
// only when an inbound message or a delivery status is stored, in the same
// write, so on one node and on many it takes effect as the event is
// applied (from the cluster log, in log order).
//
//	x/<address>   "stop"   the customer opted out; absent = may be messaged

// pOptOut prefixes the opt-out keys.
const pOptOut = "x/"

func optOutKey(addr string) []byte { return []byte(pOptOut + addr) }

// OptOutCode is Twilio's error for a message to a customer who opted out
// (21610, "Attempt to send to unsubscribed recipient"): a status failed
// with it marks the customer opted out.
const OptOutCode = "21610"

// Limits on media items.
const (
	maxMedia         = 100
	maxMediaURL      = 2048
	maxMediaType     = 255
	maxOptOutKindLen = 8
)

// optOutKind is the opt-out kind of an inbound message: the provider's
// (Twilio's OptOutType) when it gave one, else the keyword of the text.
func optOutKind(provider, text string) string {
	if provider != "" {
		return provider
	}
	return protocol.OptOutKeyword(text)
}

// applyConsent records what an inbound message of kind does to the
// customer's consent. Runs in the writer, after every check of the request.
func (t *txn) applyConsent(addr, kind string) {
	switch kind {
	case protocol.OptOutStop:
		t.put(optOutKey(addr), []byte(protocol.OptOutStop))
	case protocol.OptOutStart:
		t.del(optOutKey(addr))
	}
}

// OptedOut reports whether the customer at addr opted out (STOP, Twilio's
// OptOutType=STOP, or a send refused with Twilio error 21610) and has not
// opted in again since.
func (s *Store) OptedOut(addr string) (bool, error) {
	_, err := s.db.Get(optOutKey(addr), nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store: opted out %s: %w", addr, readErr(err))
	}
	return true, nil
}

func validMedia(media []protocol.Media) error {
	if len(media) > maxMedia {
		return invalid("%d media items, more than %d", len(media), maxMedia)
	}
	for i, m := range media {
		if m.URL == "" || len(m.URL) > maxMediaURL || len(m.ContentType) > maxMediaType {
			return invalid("media %d: URL must be 1 to %d bytes, content type at most %d", i, maxMediaURL, maxMediaType)
		}
	}
	return nil
}

func cleanMedia(media []protocol.Media) []protocol.Media {
	if len(media) == 0 {
		return nil
	}
	out := make([]protocol.Media, len(media))
	for i, m := range media {
		out[i] = protocol.Media{URL: clean(m.URL), ContentType: clean(m.ContentType)}
	}
	return out
}

// ErrorCodeOf returns the provider error code a status detail carries
// ("provider error 21610: ..."), else "".
func ErrorCodeOf(detail string) string {
	rest, ok := strings.CutPrefix(detail, "provider error ")
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(rest, ":")
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return ""
		}
	}
	return code
}
