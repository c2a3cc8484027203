package twilio

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

func TestParseInbound(t *testing.T) {
	ok := func() url.Values {
		return url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "From": {"+15551234567"}, "To": {"+15550001111"}, "Body": {"hello"}, "FromCountry": {"US"}, "NumMedia": {"0"}}
	}
	with := func(mod func(url.Values)) url.Values { f := ok(); mod(f); return f }
	tests := []struct {
		name      string
		form      url.Values
		want      Inbound
		wantField string // "" = valid
	}{
		{"typical", ok(), Inbound{Sid: "SM0123456789abcdef0123456789abcdef", From: "+15551234567", To: "+15550001111", Body: "hello", FromCountry: "US"}, ""},
		{"full Twilio form", typicalInbound(), Inbound{Sid: "SM0123456789abcdef0123456789abcdef", From: "+15551234567", To: "+15550001111",
			Body: "Hi, do you have the camcorder in stock? I'd like to pick it up today.", FromCountry: "US"}, ""},
		{"media only", with(func(f url.Values) {
			f.Set("Body", "")
			f.Set("NumMedia", "2")
			f.Set("MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME0")
			f.Set("MediaContentType0", "image/jpeg")
			f.Set("MediaUrl1", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1")
			f.Set("MediaContentType1", "audio/ogg; codecs=opus")
		}),
			Inbound{Sid: "SM0123456789abcdef0123456789abcdef", From: "+15551234567", To: "+15550001111", FromCountry: "US", NumMedia: 2, Media: []protocol.Media{
				{URL: "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME0", ContentType: "image/jpeg"},
				{URL: "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", ContentType: "audio/ogg; codecs=opus"}}}, ""},
		{"whatsapp", with(func(f url.Values) { f.Set("From", "whatsapp:+15551234567"); f.Set("To", "whatsapp:+15550001111") }),
			Inbound{Sid: "SM0123456789abcdef0123456789abcdef", From: "whatsapp:+15551234567", To: "whatsapp:+15550001111", Body: "hello", FromCountry: "US"}, ""},
		{"OptOutType STOP", with(func(f url.Values) { f.Set("OptOutType", "STOP") }),
			Inbound{Sid: "SM0123456789abcdef0123456789abcdef", From: "+15551234567", To: "+15550001111", Body: "hello", FromCountry: "US", OptOut: protocol.OptOutStop}, ""},
		{"OptOutType unknown is ignored", with(func(f url.Values) { f.Set("OptOutType", "LATER") }),
			Inbound{Sid: "SM0123456789abcdef0123456789abcdef", From: "+15551234567", To: "+15550001111", Body: "hello", FromCountry: "US"}, ""},
		{"whatsapp without a number", with(func(f url.Values) { f.Set("From", "whatsapp:") }), Inbound{}, "From"},
		{"other channel", with(func(f url.Values) { f.Set("From", "messenger:+15551234567") }), Inbound{}, "From"},
		{"media without URL", with(func(f url.Values) { f.Set("NumMedia", "1"); f.Set("MediaContentType0", "image/png") }), Inbound{}, "MediaUrl0"},
		{"media URL not http", with(func(f url.Values) {
			f.Set("NumMedia", "1")
			f.Set("MediaUrl0", "file:///etc/passwd")
			f.Set("MediaContentType0", "image/png")
		}), Inbound{}, "MediaUrl0"},
		{"media without type", with(func(f url.Values) { f.Set("NumMedia", "1"); f.Set("MediaUrl0", "https://h/x") }), Inbound{}, "MediaContentType0"},
		{"media type not a type", with(func(f url.Values) {
			f.Set("NumMedia", "1")
			f.Set("MediaUrl0", "https://h/x")
			f.Set("MediaContentType0", "image")
		}), Inbound{}, "MediaContentType0"},
		{"OptOutType repeated", with(func(f url.Values) { f.Set("OptOutType", "STOP"); f.Add("OptOutType", "START") }), Inbound{}, "OptOutType"},
		{"no FromCountry, no NumMedia", with(func(f url.Values) { f.Del("FromCountry"); f.Del("NumMedia") }),
			Inbound{Sid: "SM0123456789abcdef0123456789abcdef", From: "+15551234567", To: "+15550001111", Body: "hello"}, ""},
		{"unicode body", with(func(f url.Values) { f.Set("Body", "¿Dónde está? 🙂") }),
			Inbound{Sid: "SM0123456789abcdef0123456789abcdef", From: "+15551234567", To: "+15550001111", Body: "¿Dónde está? 🙂", FromCountry: "US"}, ""},
		{"body at the limit", with(func(f url.Values) { f.Set("Body", strings.Repeat("a", protocol.MaxText)) }),
			Inbound{Sid: "SM0123456789abcdef0123456789abcdef", From: "+15551234567", To: "+15550001111", Body: strings.Repeat("a", protocol.MaxText), FromCountry: "US"}, ""},
		{"missing MessageSid", with(func(f url.Values) { f.Del("MessageSid") }), Inbound{}, "MessageSid"},
		{"MessageSid with symbols", with(func(f url.Values) { f.Set("MessageSid", "SM../../etc") }), Inbound{}, "MessageSid"},
		{"MessageSid too long", with(func(f url.Values) { f.Set("MessageSid", strings.Repeat("a", 65)) }), Inbound{}, "MessageSid"},
		{"MessageSid repeated", with(func(f url.Values) { f.Add("MessageSid", "SM2") }), Inbound{}, "MessageSid"},
		{"missing From", with(func(f url.Values) { f.Del("From") }), Inbound{}, "From"},
		{"From not E.164", with(func(f url.Values) { f.Set("From", "5551234567") }), Inbound{}, "From"},
		{"From with spaces", with(func(f url.Values) { f.Set("From", "+1 555 123 4567") }), Inbound{}, "From"},
		{"From repeated", with(func(f url.Values) { f.Add("From", "+15559999999") }), Inbound{}, "From"},
		{"missing To", with(func(f url.Values) { f.Del("To") }), Inbound{}, "To"},
		{"To too long", with(func(f url.Values) { f.Set("To", strings.Repeat("1", 65)) }), Inbound{}, "To"},
		{"To with control char", with(func(f url.Values) { f.Set("To", "+1555\n") }), Inbound{}, "To"},
		{"empty body without media", with(func(f url.Values) { f.Set("Body", "") }), Inbound{}, "Body"},
		{"missing body without media", with(func(f url.Values) { f.Del("Body") }), Inbound{}, "Body"},
		{"body too long", with(func(f url.Values) { f.Set("Body", strings.Repeat("a", protocol.MaxText+1)) }), Inbound{}, "Body"},
		{"body not UTF-8", with(func(f url.Values) { f.Set("Body", "a\xffb") }), Inbound{}, "Body"},
		{"body repeated", with(func(f url.Values) { f.Add("Body", "again") }), Inbound{}, "Body"},
		{"NumMedia negative", with(func(f url.Values) { f.Set("NumMedia", "-1") }), Inbound{}, "NumMedia"},
		{"NumMedia not a number", with(func(f url.Values) { f.Set("NumMedia", "two") }), Inbound{}, "NumMedia"},
		{"NumMedia huge", with(func(f url.Values) { f.Set("NumMedia", "99999999999999999999") }), Inbound{}, "NumMedia"},
		{"FromCountry odd", with(func(f url.Values) { f.Set("FromCountry", "U$") }), Inbound{}, "FromCountry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseInbound(tt.form)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("ParseInbound = %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("ParseInbound = %+v, want %+v", got, tt.want)
				}
				return
			}
			fe, ok := errors.AsType[*FieldError](err)
			if !ok || fe.Field != tt.wantField {
				t.Fatalf("ParseInbound error = %v, want a FieldError for %s", err, tt.wantField)
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.wantField) {
				t.Fatalf("error %q must match ErrMalformed and name %s", err, tt.wantField)
			}
			if !reflect.DeepEqual(got, Inbound{}) {
				t.Fatalf("partial result %+v on error", got)
			}
		})
	}
}

func TestParseInboundFromErrorWrapsProtocol(t *testing.T) {
	_, err := ParseInbound(url.Values{"MessageSid": {"SM1"}, "From": {"12"}, "To": {"+1555"}, "Body": {"x"}})
	if !errors.Is(err, protocol.ErrBadPhone) {
		t.Fatalf("err = %v, want protocol.ErrBadPhone in chain", err)
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name      string
		form      url.Values
		want      StatusUpdate
		wantField string
		unknown   bool
	}{
		{"delivered", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}, "SmsStatus": {"delivered"}},
			StatusUpdate{Sid: "SM1", Status: protocol.StatusDelivered, TwilioStatus: "delivered"}, "", false},
		{"undelivered with code", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}},
			StatusUpdate{Sid: "SM1", Status: protocol.StatusFailed, TwilioStatus: "undelivered", ErrorCode: "30003"}, "", false},
		{"sending", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"sending"}},
			StatusUpdate{Sid: "SM1", Status: protocol.StatusQueued, TwilioStatus: "sending"}, "", false},
		{"missing sid", url.Values{"MessageStatus": {"sent"}}, StatusUpdate{}, "MessageSid", false},
		{"bad sid", url.Values{"MessageSid": {"SM 1"}, "MessageStatus": {"sent"}}, StatusUpdate{}, "MessageSid", false},
		{"missing status", url.Values{"MessageSid": {"SM1"}}, StatusUpdate{}, "MessageStatus", false},
		{"repeated status", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"sent", "delivered"}}, StatusUpdate{}, "MessageStatus", false},
		{"unknown status", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"teleported"}}, StatusUpdate{}, "MessageStatus", true},
		{"inbound status is unknown here", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"received"}}, StatusUpdate{}, "MessageStatus", true},
		{"error code not digits", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"failed"}, "ErrorCode": {"30003; drop"}}, StatusUpdate{}, "ErrorCode", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatus(tt.form)
			if tt.wantField == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParseStatus = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			fe, ok := errors.AsType[*FieldError](err)
			if !ok || fe.Field != tt.wantField || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseStatus error = %v, want a FieldError for %s", err, tt.wantField)
			}
			if errors.Is(err, ErrUnknownStatus) != tt.unknown {
				t.Fatalf("errors.Is(err, ErrUnknownStatus) = %v, want %v", !tt.unknown, tt.unknown)
			}
		})
	}
}

func TestMapStatus(t *testing.T) {
	tests := []struct {
		in   string
		want protocol.Status
		ok   bool
	}{
		{"accepted", protocol.StatusQueued, true},
		{"scheduled", protocol.StatusQueued, true},
		{"queued", protocol.StatusQueued, true},
		{"sending", protocol.StatusQueued, true},
		{"sent", protocol.StatusSent, true},
		{"delivered", protocol.StatusDelivered, true},
		{"read", protocol.StatusDelivered, true},
		{"failed", protocol.StatusFailed, true},
		{"undelivered", protocol.StatusFailed, true},
		{"canceled", protocol.StatusFailed, true},
		{"receiving", "", false},
		{"received", "", false},
		{"Delivered", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := MapStatus(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("MapStatus(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok && !got.Valid() {
				t.Fatalf("MapStatus(%q) = %q is not a protocol status", tt.in, got)
			}
		})
	}
}

// FuzzParseInbound feeds raw form bodies through url.ParseQuery into
// ParseInbound: it must never panic, and whatever it accepts must satisfy
// the invariants the node relies on.
func FuzzParseInbound(f *testing.F) {
	f.Add(typicalInbound().Encode())
	f.Add("MessageSid=SM1&From=%2B15551234567&To=%2B15550001111&Body=hi")
	f.Add("MessageSid=SM1&From=%2B15551234567&To=x&Body=&NumMedia=1")
	f.Add("MessageSid=SM1&MessageSid=SM2&From=%2B1&Body=%ff")
	f.Add("From=%2B15551234567&To=1&Body=" + strings.Repeat("%F0%9F%99%82", 10))
	f.Add("NumMedia=-0&Body=&MessageSid=a&From=%2B100&To=%00")
	f.Add("MessageSid=MM1&From=whatsapp%3A%2B15551234567&To=whatsapp%3A%2B15550001111&Body=hi&OptOutType=STOP")
	f.Add("MessageSid=MM1&From=%2B15551234567&To=x&Body=&NumMedia=2&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fm%2F0&MediaContentType0=image%2Fjpeg&MediaUrl1=http%3A%2F%2Fh%2F1&MediaContentType1=audio%2Fogg%3B+codecs%3Dopus")
	f.Add("MessageSid=MM1&From=whatsapp:%2B0&To=x&Body=&NumMedia=1&MediaUrl0=ftp%3A%2F%2Fh&MediaContentType0=image")
	f.Add("MessageSid=SM1&From=%2B15551234567&To=x&Body=stop&OptOutType=start&OptOutType=STOP")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		in, err := ParseInbound(form)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			if !reflect.DeepEqual(in, Inbound{}) {
				t.Fatalf("partial result %+v with error", in)
			}
			return
		}
		if in.Sid == "" || len(in.Sid) > MaxSidLen || !alnum(in.Sid) {
			t.Fatalf("bad Sid %q accepted", in.Sid)
		}
		if p, err := protocol.NormalizeAddress(in.From); err != nil || p != in.From {
			t.Fatalf("bad From %q accepted", in.From)
		}
		if in.To == "" || len(in.To) > MaxToLen {
			t.Fatalf("bad To %q accepted", in.To)
		}
		if len(in.Body) > protocol.MaxText || !utf8.ValidString(in.Body) || (in.Body == "" && in.NumMedia == 0) {
			t.Fatalf("bad Body %q (NumMedia %d) accepted", in.Body, in.NumMedia)
		}
		if in.NumMedia < 0 || in.NumMedia > MaxNumMedia {
			t.Fatalf("bad NumMedia %d accepted", in.NumMedia)
		}
		if len(in.Media) != in.NumMedia {
			t.Fatalf("%d media items for NumMedia %d", len(in.Media), in.NumMedia)
		}
		for i, m := range in.Media {
			u, err := url.Parse(m.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(m.URL) > MaxMediaURL ||
				m.URL != form.Get(fmt.Sprintf("MediaUrl%d", i)) || m.ContentType != form.Get(fmt.Sprintf("MediaContentType%d", i)) {
				t.Fatalf("bad media %d %+v accepted from %v", i, m, form)
			}
			if !strings.Contains(m.ContentType, "/") || len(m.ContentType) > MaxContentType || !utf8.ValidString(m.ContentType) {
				t.Fatalf("bad content type %q accepted", m.ContentType)
			}
		}
		switch in.OptOut {
		case "", protocol.OptOutStop, protocol.OptOutStart, protocol.OptOutHelp:
		default:
			t.Fatalf("opt-out kind %q", in.OptOut)
		}
		if in.Sid != form.Get("MessageSid") || in.Body != form.Get("Body") || in.From != form.Get("From") {
			t.Fatalf("result %+v differs from the form %v", in, form)
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add("MessageSid=SM1&MessageStatus=delivered")
	f.Add("MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		su, err := ParseStatus(form)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		if !su.Status.Valid() || su.Status == protocol.StatusReceived || su.Sid == "" || !digits(su.ErrorCode) {
			t.Fatalf("bad update %+v accepted", su)
		}
	})
}

func BenchmarkParseInbound(b *testing.B) {
	form := typicalInbound()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseInbound(form); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseQueryBaseline decodes the same webhook body with
// url.ParseQuery, the step before ParseInbound in the handler, for scale.
func BenchmarkParseQueryBaseline(b *testing.B) {
	body := typicalInbound().Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := url.ParseQuery(body); err != nil {
			b.Fatal(err)
		}
	}
}
