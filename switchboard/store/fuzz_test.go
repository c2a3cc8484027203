package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
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

// FuzzParseQuery: a query either is refused with ErrInvalid or yields 1 to
// MaxQueryWords words, each a word of the query that tokenizes to itself;
// and a message whose text is the query is found by it, first.
func FuzzParseQuery(f *testing.F) {
	for _, q := range []string{"order", "Refund ORDER 1234", "東京", "e\u0301", "", "--", "a b c d e f g h i", "\xff", strings.Repeat("ü", 40)} {
		f.Add(q)
	}
	c := &fakeClock{}
	s, err := Open(Options{Dir: f.TempDir(), Now: c.Now})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	n := 0
	f.Fuzz(func(t *testing.T, q string) {
		words, err := ParseQuery(q)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseQuery(%q): %v, want ErrInvalid", q, err)
			}
			return
		}
		if len(words) == 0 || len(words) > MaxQueryWords {
			t.Fatalf("ParseQuery(%q) = %d words", q, len(words))
		}
		all := Words(q)
		for _, w := range words {
			if !slices.Contains(all, w) || !slices.Equal(Words(w), []string{w}) || len(w) > maxWord {
				t.Fatalf("ParseQuery(%q): word %q is not a word of the query", q, w)
			}
		}
		n++
		m, _, err := s.AppendInbound(context.Background(), Inbound{Sid: fmt.Sprint("fuzz", n), Phone: "+15551234567", Text: q})
		if err != nil {
			t.Fatal(err)
		}
		list, _, err := s.Search(q, "", 1)
		if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], m) {
			t.Fatalf("Search(%q) = %+v, %v; want %+v", q, list, err, m)
		}
	})
}
