package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code string // "" = valid
		want Frame
	}{
		{"available", `{"type":"available","capacity":4}`, "", Frame{Type: TypeAvailable, Capacity: 4}},
		{"available default", `{"type":"available"}`, "", Frame{Type: TypeAvailable}},
		{"away", `{"type":"away"}`, "", Frame{Type: TypeAway}},
		{"response", `{"type":"response","phone":"+15551234567","message":"hi","ref":"r1"}`, "", Frame{Type: TypeResponse, Phone: "+15551234567", Message: "hi", Ref: "r1"}},
		{"response without phone", `{"type":"response","message":"hi","ref":"r1"}`, "", Frame{Type: TypeResponse, Message: "hi", Ref: "r1"}},
		{"release", `{"type":"release","phone":"+15551234567"}`, "", Frame{Type: TypeRelease, Phone: "+15551234567"}},
		{"history default limit", `{"type":"history","phone":"+15551234567"}`, "", Frame{Type: TypeHistory, Phone: "+15551234567", Limit: 50}},
		{"history", `{"type":"history","phone":"+15551234567","before":"01ABC","limit":10}`, "", Frame{Type: TypeHistory, Phone: "+15551234567", Before: "01ABC", Limit: 10}},
		{"search", `{"type":"search","q":"refund order","ref":"s1"}`, "", Frame{Type: TypeSearch, Query: "refund order", Ref: "s1"}},
		{"search one conversation, paged", `{"type":"search","q":"x","phone":"+15551234567","before":"01ABC","limit":10}`, "", Frame{Type: TypeSearch, Query: "x", Phone: "+15551234567", Before: "01ABC", Limit: 10}},
		{"search long query", `{"type":"search","q":"` + strings.Repeat("q", MaxQuery+1) + `"}`, CodeInvalid, Frame{}},
		{"search limit", `{"type":"search","q":"x","limit":201}`, CodeInvalid, Frame{}},
		{"search bad phone", `{"type":"search","q":"x","phone":"555"}`, CodeInvalid, Frame{}},
		{"search long ref", `{"type":"search","q":"x","ref":"` + strings.Repeat("r", MaxRef+1) + `"}`, CodeInvalid, Frame{}},
		{"results is server-only", `{"type":"results"}`, CodeUnknownType, Frame{}},
		{"unknown fields ignored", `{"type":"away","mood":"sunny"}`, "", Frame{Type: TypeAway}},
		{"empty", ``, CodeBadFrame, Frame{}},
		{"not an object", `"away"`, CodeBadFrame, Frame{}},
		{"array", `[{"type":"away"}]`, CodeBadFrame, Frame{}},
		{"broken json", `{"type":`, CodeBadFrame, Frame{}},
		{"invalid utf8", "{\"type\":\"away\xff\"}", CodeBadFrame, Frame{}},
		{"no type", `{"phone":"+15551234567"}`, CodeBadFrame, Frame{}},
		{"unknown type", `{"type":"dance"}`, CodeUnknownType, Frame{}},
		{"server-only type", `{"type":"assigned"}`, CodeUnknownType, Frame{}},
		{"capacity wrong type", `{"type":"available","capacity":"3"}`, CodeBadFrame, Frame{}},
		{"capacity negative", `{"type":"available","capacity":-1}`, CodeInvalid, Frame{}},
		{"capacity huge", `{"type":"available","capacity":100000}`, CodeInvalid, Frame{}},
		{"response no ref", `{"type":"response","message":"hi"}`, CodeInvalid, Frame{}},
		{"response long ref", `{"type":"response","message":"hi","ref":"` + strings.Repeat("r", MaxRef+1) + `"}`, CodeInvalid, Frame{}},
		{"response blank", `{"type":"response","message":"   ","ref":"r"}`, CodeInvalid, Frame{}},
		{"response too long", `{"type":"response","message":"` + strings.Repeat("a", MaxText+1) + `","ref":"r"}`, CodeInvalid, Frame{}},
		{"response bad phone", `{"type":"response","phone":"555","message":"hi","ref":"r"}`, CodeInvalid, Frame{}},
		{"release no phone", `{"type":"release"}`, CodeInvalid, Frame{}},
		{"history limit", `{"type":"history","phone":"+15551234567","limit":1000}`, CodeInvalid, Frame{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := DecodeRequest([]byte(tt.in))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if f.Type != tt.want.Type || f.Phone != tt.want.Phone || f.Message != tt.want.Message || f.Ref != tt.want.Ref ||
					f.Capacity != tt.want.Capacity || f.Query != tt.want.Query || f.Before != tt.want.Before || f.Limit != tt.want.Limit {
					t.Fatalf("frame = %+v, want %+v", f, tt.want)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != tt.code {
				t.Fatalf("error = %v, want code %s", err, tt.code)
			}
			if ef := pe.Frame(); ef.Type != TypeError || ef.Code != tt.code || ef.Text == "" {
				t.Fatalf("error frame = %+v", ef)
			}
		})
	}
}

func TestFrameShapes(t *testing.T) {
	tests := []struct {
		f    Frame
		want string
	}{
		{Frame{Type: TypeAlert, Text: "How can I help you?"}, `{"type":"alert","text":"How can I help you?"}`},
		{Frame{Type: TypeAssigned, Phone: "+1555"}, `{"type":"assigned","phone":"+1555","list":[]}`},
		{Frame{Type: TypeHistory, Phone: "+1555"}, `{"type":"history","phone":"+1555","list":[],"more":false}`},
		{Frame{Type: TypeResults, Query: "camera"}, `{"type":"results","q":"camera","list":[],"more":false}`},
		{Frame{Type: TypeResults, Ref: "s1", Query: "x", Phone: "+1555", More: true}, `{"type":"results","ref":"s1","q":"x","phone":"+1555","list":[],"more":true}`},
		{Frame{Type: TypeAck, Ref: "r", ID: "x"}, `{"type":"ack","ref":"r","id":"x"}`},
		{Frame{Type: TypeError, Code: CodeInvalid, Text: "no"}, `{"type":"error","code":"invalid","text":"no"}`},
		{Frame{Type: TypeReleased, Phone: "+1555", Reason: "released"}, `{"type":"released","phone":"+1555","reason":"released"}`},
		{Frame{Type: TypeStatus, Phone: "+1555", ID: "x", Status: StatusSent}, `{"type":"status","phone":"+1555","id":"x","status":"sent"}`},
		{Frame{Type: TypeStats, Product: "2", Categories: map[string]int64{"Players": 1}}, `{"type":"stats","product":"2","categories":{"Players":1}}`},
		{Frame{Type: TypeQueue, Waiting: 3, LongestWaitMs: 42000}, `{"type":"queue","waiting":3,"longestWaitMs":42000}`},
		{Frame{Type: TypeQueue}, `{"type":"queue","waiting":0,"longestWaitMs":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.f.Type, func(t *testing.T) {
			b, err := json.Marshal(tt.f)
			if err != nil || string(b) != tt.want {
				t.Fatalf("got %s (%v), want %s", b, err, tt.want)
			}
			back, err := DecodeEvent(b)
			if err != nil || back.Type != tt.f.Type || back.Waiting != tt.f.Waiting || back.LongestWaitMs != tt.f.LongestWaitMs {
				t.Fatalf("DecodeEvent = %+v, %v", back, err)
			}
		})
	}
}

func TestStatusNeverBackwards(t *testing.T) {
	tests := []struct {
		from, to Status
		want     bool
	}{
		{StatusQueued, StatusSent, true},
		{StatusQueued, StatusDelivered, true},
		{StatusSent, StatusDelivered, true},
		{StatusSent, StatusFailed, true},
		{StatusDelivered, StatusSent, false},
		{StatusDelivered, StatusFailed, false},
		{StatusFailed, StatusDelivered, false},
		{StatusSent, StatusQueued, false},
		{StatusQueued, "bogus", false},
		{"", StatusQueued, true},
	}
	for _, tt := range tests {
		if got := tt.from.Advances(tt.to); got != tt.want {
			t.Errorf("%q→%q = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	for _, p := range []string{"+15551234567", "+447700900123", "+123"} {
		if _, err := NormalizePhone(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"", "15551234567", "+0155512345", "+1555-123", "+1234567890123456", "+", "whatsapp:+1555"} {
		if _, err := NormalizePhone(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
	if Digits("+15551234567") != "15551234567" {
		t.Fatal("Digits")
	}
}

// FuzzDecodeRequest: no input panics; a valid frame has a known type and
// satisfies the field rules; an invalid one carries a code.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"available","capacity":3}`, `{"type":"response","message":"hi","ref":"r"}`,
		`{"type":"history","phone":"+15551234567","limit":5}`, `{"type":"release","phone":"+1555"}`, `{"type":"search","q":"refund","phone":"+1555","limit":3}`,
		`{}`, `[]`, `{"type":1}`, "\xff",
		`{"type":"release","phone":"whatsapp:+15551234567"}`, `{"type":"history","phone":"whatsapp:+0"}`,
		`{"type":"response","phone":"whatsapp:15551234567","message":"hi","ref":"r"}`,
		`{"type":"transfer","phone":"+15551234567","to":"bob","note":"vip"}`, `{"type":"transfer","phone":"+15551234567","to":""}`,
		`{"type":"assign","phone":"+15551234567","to":"bob"}`, `{"type":"assign","phone":"+15551234567","to":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeRequest(data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code == "" {
				t.Fatalf("error without code: %v", err)
			}
			return
		}
		switch fr.Type {
		case TypeAvailable:
			if fr.Capacity < 0 || fr.Capacity > MaxCapacity {
				t.Fatalf("capacity %d accepted", fr.Capacity)
			}
		case TypeAway:
		case TypeResponse:
			if fr.Ref == "" || len(fr.Ref) > MaxRef || len(fr.Message) > MaxText || strings.TrimSpace(fr.Message) == "" {
				t.Fatalf("bad response accepted: %+v", fr)
			}
		case TypeRelease, TypeHistory:
			if _, err := NormalizeAddress(fr.Phone); err != nil {
				t.Fatalf("bad phone accepted: %q", fr.Phone)
			}
			if fr.Type == TypeHistory && (fr.Limit < 1 || fr.Limit > MaxHistory) {
				t.Fatalf("limit %d accepted", fr.Limit)
			}
		case TypeSearch:
			if len(fr.Query) > MaxQuery || fr.Limit < 0 || fr.Limit > MaxSearchPage || len(fr.Ref) > MaxRef || len(fr.Before) > 64 {
				t.Fatalf("bad search accepted: %+v", fr)
			}
			if _, err := NormalizeAddress(fr.Phone); fr.Phone != "" && err != nil {
				t.Fatalf("bad phone accepted: %q", fr.Phone)
			}
		case TypeTransfer, TypeAssign:
			if _, err := NormalizeAddress(fr.Phone); err != nil || len(fr.Note) > MaxNote || len(fr.Ref) > MaxRef {
				t.Fatalf("bad %s accepted: %+v", fr.Type, fr)
			}
			if (fr.To != "" || fr.Type == TypeAssign) && ValidAgentName(fr.To) != nil {
				t.Fatalf("bad agent name accepted: %q", fr.To)
			}
		case TypeNote, TypeContact: // FuzzDeskFrames
		default:
			t.Fatalf("type %q accepted", fr.Type)
		}
	})
}

func TestAddresses(t *testing.T) {
	for _, tc := range []struct {
		addr, channel, phone, digits string
		ok                           bool
	}{
		{"+15551234567", ChannelSMS, "+15551234567", "15551234567", true},
		{"whatsapp:+15551234567", ChannelWhatsApp, "+15551234567", "whatsapp.15551234567", true},
		{"whatsapp:15551234567", "", "", "", false},
		{"whatsapp:", "", "", "", false},
		{"WhatsApp:+15551234567", "", "", "", false},
		{"messenger:+15551234567", "", "", "", false},
		{"whatsapp:whatsapp:+15551234567", "", "", "", false},
	} {
		_, err := NormalizeAddress(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("NormalizeAddress(%q) = %v, want ok %v", tc.addr, err, tc.ok)
			continue
		}
		if tc.ok && (Channel(tc.addr) != tc.channel || PhoneOf(tc.addr) != tc.phone || Digits(tc.addr) != tc.digits || OnChannel(tc.channel, tc.phone) != tc.addr) {
			t.Errorf("%q: channel %q phone %q digits %q", tc.addr, Channel(tc.addr), PhoneOf(tc.addr), Digits(tc.addr))
		}
	}
}

func TestOptOutKeyword(t *testing.T) {
	for text, want := range map[string]string{
		"STOP": OptOutStop, " stop\n": OptOutStop, "StopAll": OptOutStop, "unsubscribe": OptOutStop, "CANCEL": OptOutStop,
		"end": OptOutStop, "Quit": OptOutStop, "START": OptOutStart, "yes": OptOutStart, "Unstop": OptOutStart,
		"HELP": OptOutHelp, "info": OptOutHelp, "please stop": "", "stop!": "", "": "", "STOP STOP": "", "yes please": "",
	} {
		if got := OptOutKeyword(text); got != want {
			t.Errorf("OptOutKeyword(%q) = %q, want %q", text, got, want)
		}
	}
}

// FuzzAddress: whatever NormalizeAddress accepts is a channel and an E.164
// number that write back to the same address, and its routing key word
// holds no '*', '#' or empty word.
func FuzzAddress(f *testing.F) {
	for _, s := range []string{"+15551234567", "whatsapp:+15551234567", "whatsapp:", "whatsapp:+0", "+1.5", "STOP"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		switch OptOutKeyword(s) {
		case "", OptOutStop, OptOutStart, OptOutHelp:
		default:
			t.Fatalf("OptOutKeyword(%q) = %q", s, OptOutKeyword(s))
		}
		a, err := NormalizeAddress(s)
		if err != nil {
			return
		}
		if a != s || len(a) > MaxAddress {
			t.Fatalf("NormalizeAddress(%q) = %q", s, a)
		}
		if _, err := NormalizePhone(PhoneOf(a)); err != nil || OnChannel(Channel(a), PhoneOf(a)) != a {
			t.Fatalf("%q: phone %q channel %q", a, PhoneOf(a), Channel(a))
		}
		for _, w := range strings.Split(Digits(a), ".") {
			if w == "" || strings.ContainsAny(w, "*#") {
				t.Fatalf("routing key word %q of %q", Digits(a), a)
			}
		}
	})
}
