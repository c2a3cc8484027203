package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode"
)

func TestDeskFrames(t *testing.T) {
	const p = "+15551234567"
	for _, tt := range []struct {
		in   string
		code string // "" = valid
	}{
		{`{"type":"note","phone":"` + p + `","text":"VIP","ref":"n1"}`, ""},
		{`{"type":"note","phone":"` + p + `","text":" ","ref":"n1"}`, CodeInvalid},
		{`{"type":"note","phone":"` + p + `","text":"x"}`, CodeInvalid},
		{`{"type":"note","text":"x","ref":"n1"}`, CodeInvalid},
		{`{"type":"note","phone":"` + p + `","text":"` + strings.Repeat("a", MaxText+1) + `","ref":"n1"}`, CodeInvalid},
		{`{"type":"contact","phone":"` + p + `","name":"Maya Lopez"}`, ""},
		{`{"type":"contact","phone":"` + p + `","name":""}`, ""},
		{`{"type":"contact","phone":"` + p + `","name":"a\nb"}`, CodeInvalid},
		{`{"type":"contact","phone":"` + p + `","name":"` + strings.Repeat("a", MaxContactName+1) + `"}`, CodeInvalid},
		{`{"type":"contact","phone":"` + p + `","name":7}`, CodeBadFrame},
		{`{"type":"contact","name":"x"}`, CodeInvalid},
		{`{"type":"canned"}`, CodeUnknownType},
		{`{"type":"note","phone":"` + p + `","text":"line\nbreak","ref":"n1"}`, ""},
	} {
		_, err := DecodeRequest([]byte(tt.in))
		var pe *Error
		switch {
		case tt.code == "" && err != nil:
			t.Errorf("%.60s: %v", tt.in, err)
		case tt.code != "" && (!errors.As(err, &pe) || pe.Code != tt.code):
			t.Errorf("%.60s: %v, want %s", tt.in, err, tt.code)
		}
	}
	// The wire shapes.
	for _, tt := range []struct {
		f    Frame
		want string
	}{
		{Frame{Type: TypeCanned}, `{"type":"canned","canned":[]}`},
		{Frame{Type: TypeCanned, Canned: []CannedReply{{Name: "hi", Text: "Hi!"}}}, `{"type":"canned","canned":[{"name":"hi","text":"Hi!"}]}`},
		{Frame{Type: TypeAssigned, Phone: p, Contact: &Contact{Name: "Maya"}}, `{"type":"assigned","phone":"` + p + `","list":[],"contact":{"name":"Maya"}}`},
		{Frame{Type: TypeUpdate, Phone: p}, `{"type":"update","phone":"` + p + `","list":[]}`},
		{Frame{Type: TypeNote, Phone: p, Text: "x", Ref: "r"}, `{"type":"note","text":"x","phone":"` + p + `","ref":"r"}`},
		{Frame{Type: TypeContact, Phone: p, Name: "Maya"}, `{"type":"contact","phone":"` + p + `","name":"Maya"}`},
	} {
		b, err := json.Marshal(tt.f)
		if err != nil || string(b) != tt.want {
			t.Errorf("%+v = %s %v, want %s", tt.f, b, err, tt.want)
		}
	}
}

func TestValidCannedText(t *testing.T) {
	for text, ok := range map[string]bool{
		"Thanks!": true, "Line one\nline two\tend": true, "  ": false, "": false, "bell\a": false,
		"\x1b[31mred": false, "\xff": false, strings.Repeat("a", MaxText): true, strings.Repeat("a", MaxText+1): false,
	} {
		if err := ValidCannedText(text); (err == nil) != ok {
			t.Errorf("ValidCannedText(%q) = %v", text, err)
		}
	}
}

func TestValidCannedName(t *testing.T) {
	for name, ok := range map[string]bool{
		"thanks": true, "a": true, "ship-time_2": true, "9am": true,
		"": false, "Thanks": false, "-x": false, "_x": false, "a b": false, "a/b": false, "é": false,
		strings.Repeat("a", MaxCannedName): true, strings.Repeat("a", MaxCannedName+1): false,
	} {
		if err := ValidCannedName(name); (err == nil) != ok {
			t.Errorf("ValidCannedName(%q) = %v", name, err)
		}
	}
}

// FuzzDeskFrames: a note or contact frame that decodes keeps the rules.
func FuzzDeskFrames(f *testing.F) {
	for _, s := range []string{
		`{"type":"note","phone":"+15551234567","text":"VIP","ref":"n1"}`,
		`{"type":"contact","phone":"+15551234567","name":" Maya "}`,
		`{"type":"contact","phone":"+1555","name":"\u0007"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeRequest(data)
		if err != nil || (fr.Type != TypeNote && fr.Type != TypeContact) {
			return
		}
		if _, err := NormalizePhone(fr.Phone); err != nil {
			t.Fatalf("bad phone accepted: %q", fr.Phone)
		}
		if fr.Type == TypeNote && (fr.Ref == "" || len(fr.Ref) > MaxRef || strings.TrimSpace(fr.Text) == "" || len(fr.Text) > MaxText) {
			t.Fatalf("bad note accepted: %+v", fr)
		}
		if fr.Type == TypeContact {
			if len(fr.Name) > MaxContactName || strings.TrimSpace(fr.Name) != fr.Name || strings.IndexFunc(fr.Name, unicode.IsControl) >= 0 {
				t.Fatalf("bad contact name accepted: %q", fr.Name)
			}
		}
	})
}

// FuzzCleanContact: a contact that is accepted keeps the rules and is
// clean twice over.
func FuzzCleanContact(f *testing.F) {
	f.Add(" Maya Lopez ", "prefers email\nafter 5")
	f.Add("a\tb", "")
	f.Fuzz(func(t *testing.T, name, notes string) {
		c, err := CleanContact(Contact{Name: name, Notes: notes})
		if err != nil {
			return
		}
		if len(c.Name) > MaxContactName || len(c.Notes) > MaxContactNotes || strings.IndexFunc(c.Name, unicode.IsControl) >= 0 {
			t.Fatalf("accepted %+v", c)
		}
		if again, err := CleanContact(c); err != nil || again != c {
			t.Fatalf("not stable: %+v → %+v %v", c, again, err)
		}
	})
}
