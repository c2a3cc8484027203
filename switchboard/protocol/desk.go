package protocol

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the helpdesk additions of issue 18 items 2, 3 and 5:
// internal notes, canned replies and contacts.

// Contact is what the switchboard knows about a customer beyond the phone
// number: set by an admin (PUT /contacts/{phone}) or by the agent holding
// the conversation (a contact frame). It rides on assigned and update
// frames as "contact".
type Contact struct {
	Name  string `json:"name"`
	Notes string `json:"notes,omitempty"`
}

// CannedReply is one prepared answer: agents type /Name and Tab to insert
// Text into the composer.
type CannedReply struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

// Limits on contacts and canned replies.
const (
	// MaxContactName is the longest contact name, in bytes.
	MaxContactName = 100
	// MaxContactNotes is the longest contact notes, in bytes.
	MaxContactNotes = 2000
	// MaxCannedName is the longest canned reply name, in bytes.
	MaxCannedName = 32
	// MaxCanned is how many canned replies the switchboard keeps.
	MaxCanned = 200
)

// ValidCannedName reports whether name can name a canned reply: 1 to
// MaxCannedName lower-case letters a-z, digits, '-' and '_', starting with
// a letter or digit. Agents type it after '/', and it is part of a URL
// and of a routing key.
func ValidCannedName(name string) error {
	if name == "" || len(name) > MaxCannedName {
		return fmt.Errorf("canned reply name must be 1 to %d characters", MaxCannedName)
	}
	for i, r := range name {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || (i > 0 && (r == '-' || r == '_'))
		if !ok {
			return fmt.Errorf("canned reply name %q may hold only lower-case letters a-z, digits, '-' and '_', and starts with a letter or digit", truncate(name, MaxCannedName))
		}
	}
	return nil
}

// ValidCannedText reports whether text can be a canned reply's text: not
// blank, valid UTF-8, at most MaxText bytes, no control characters but
// line breaks and tabs (it is inserted into the agent's composer as typed
// text).
func ValidCannedText(text string) error {
	if i := strings.IndexFunc(text, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }); i >= 0 {
		return fmt.Errorf("canned reply text may hold no control characters but line breaks and tabs")
	}
	switch {
	case !utf8.ValidString(text):
		return fmt.Errorf("canned reply text is not valid UTF-8")
	case strings.TrimSpace(text) == "":
		return fmt.Errorf("canned reply text is empty")
	case len(text) > MaxText:
		return fmt.Errorf("canned reply text is %d bytes, more than %d", len(text), MaxText)
	}
	return nil
}

// CleanContact checks a contact and returns it with the name's surrounding
// space trimmed. The name is one line (no control characters) of at most
// MaxContactName bytes; the notes may hold line breaks and tabs and are at
// most MaxContactNotes bytes. Both may be empty (an empty contact clears
// it).
func CleanContact(c Contact) (Contact, error) {
	c.Name = strings.TrimSpace(c.Name)
	switch {
	case !utf8.ValidString(c.Name) || !utf8.ValidString(c.Notes):
		return c, fmt.Errorf("contact is not valid UTF-8")
	case len(c.Name) > MaxContactName:
		return c, fmt.Errorf("contact name is %d bytes, more than %d", len(c.Name), MaxContactName)
	case len(c.Notes) > MaxContactNotes:
		return c, fmt.Errorf("contact notes are %d bytes, more than %d", len(c.Notes), MaxContactNotes)
	}
	for _, r := range c.Name {
		if unicode.IsControl(r) {
			return c, fmt.Errorf("contact name must be one line without control characters")
		}
	}
	for _, r := range c.Notes {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return c, fmt.Errorf("contact notes may hold no control characters but line breaks and tabs")
		}
	}
	return c, nil
}

// validateDesk checks a note or contact frame from an agent.
func validateDesk(f *Frame) error {
	if _, err := NormalizeAddress(f.Phone); err != nil {
		return invalid(truncate(f.Ref, MaxRef), "phone: %v", err)
	}
	if f.Type == TypeContact {
		c, err := CleanContact(Contact{Name: f.Name})
		if err != nil {
			return invalid("", "%v", err)
		}
		f.Name = c.Name
		return nil
	}
	switch {
	case f.Ref == "" || len(f.Ref) > MaxRef:
		return invalid(truncate(f.Ref, MaxRef), "ref is required and at most %d bytes", MaxRef)
	case strings.TrimSpace(f.Text) == "":
		return invalid(f.Ref, "note text is empty")
	case len(f.Text) > MaxText:
		return invalid(f.Ref, "note text is longer than %d bytes", MaxText)
	}
	return nil
}

// cannedFrame is the fixed shape of a canned frame: the whole list, even
// when it is empty.
func cannedFrame(f Frame) any {
	list := f.Canned
	if list == nil {
		list = []CannedReply{}
	}
	return struct {
		Type   string        `json:"type"`
		Canned []CannedReply `json:"canned"`
	}{f.Type, list}
}
