package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// FuzzAppendInbound feeds webhook-shaped input (Sid, From, Body) straight to
// the store: whatever is accepted must read back exactly and be stored once;
// whatever is refused must be ErrInvalid and change nothing.
func FuzzAppendInbound(f *testing.F) {
	f.Add("SM1", "+15551234567", "hello")
	f.Add("SM/with/slashes", "+15551234567", "")
	f.Add("sid\x00nul", "+1555", "\xff\xfe")
	f.Add("", "+15551234567", "x")
	f.Add("SM2", "+15551234567/1", "x")
	f.Add("SM3", "15551234567", "x")
	f.Add("SM4", "whatsapp:+15551234567", "STOP")
	f.Add("SM5", "whatsapp:+15551234567/1", "start")
	s, err := Open(Options{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, sid, phone, text string) {
		in := Inbound{Sid: sid, Phone: phone, Text: text}
		before, _ := s.Conversation(phone)
		m, dup, err := s.AppendInbound(ctx, in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("AppendInbound(%q, %q): %v", sid, phone, err)
			}
			if after, _ := s.Conversation(phone); len(after) != len(before) {
				t.Fatalf("refused input changed the conversation")
			}
			return
		}
		if !dup && (m.Text != strings.ToValidUTF8(text, "\uFFFD") || m.Phone != phone || m.Direction != protocol.In) {
			t.Fatalf("stored %+v for %q %q %q", m, sid, phone, text)
		}
		got, err := s.Message(m.ID)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("Message(%s) = %+v, %v; want %+v", m.ID, got, err, m)
		}
		again, dup2, err := s.AppendInbound(ctx, in)
		if err != nil || !dup2 || !reflect.DeepEqual(again, m) {
			t.Fatalf("retry: %+v dup=%v err=%v, want %+v", again, dup2, err, m)
		}
	})
}
