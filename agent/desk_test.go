package agent

import (
	"slices"
	"testing"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

func TestFillPlaceholders(t *testing.T) {
	maya := &conversation{phone: "+15551230001", contact: protocol.Contact{Name: "Maya de la Cruz"}}
	anon := &conversation{phone: "+15551230002"}
	for _, tt := range []struct {
		c       *conversation
		in, out string
		missing []string
	}{
		{maya, "Hi {first_name}!", "Hi Maya!", nil},
		{maya, "{name} / {last_name} / {phone}", "Maya de la Cruz / de la Cruz / +15551230001", nil},
		{maya, "Dear {title} {first_name}", "Dear {title} Maya", []string{"{title}"}},
		{maya, "{First_Name} and {first name}", "{First_Name} and {first name}", nil}, // not placeholders
		{anon, "Hi {first_name}, {first_name}", "Hi {first_name}, {first_name}", []string{"{first_name}"}},
		{anon, "call {phone}", "call +15551230002", nil},
	} {
		out, missing := fill(tt.in, tt.c)
		if out != tt.out || !slices.Equal(missing, tt.missing) {
			t.Errorf("fill(%q) = %q %v, want %q %v", tt.in, out, missing, tt.out, tt.missing)
		}
	}
}
