package switchboard

import (
	"strings"
	"testing"
	"unicode"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// FuzzDeskBodies: the admin bodies either decode to what the rules allow
// or fail with an error; nothing panics.
func FuzzDeskBodies(f *testing.F) {
	for _, s := range []string{`{"text":"Hi {first_name}"}`, `{"name":"Maya","notes":"x"}`, `{}`, `{"text":1}`, `{"text":"a"} {}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if text, err := decodeCannedBody(body); err == nil {
			if protocol.ValidCannedText(text) != nil {
				t.Fatalf("canned text %q accepted", text)
			}
		}
		if c, err := decodeContactBody(body); err == nil {
			if len(c.Name) > protocol.MaxContactName || len(c.Notes) > protocol.MaxContactNotes || strings.IndexFunc(c.Name, unicode.IsControl) >= 0 {
				t.Fatalf("contact %+v accepted", c)
			}
		}
	})
}
