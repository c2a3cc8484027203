package httpbody

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     io.Reader
		want     string
		wantOK   bool
		wantCode int
		wantText string
	}{
		{"under the limit", strings.NewReader("hello"), "hello", true, 200, ""},
		{"at the limit", strings.NewReader("0123456789"), "0123456789", true, 200, ""},
		{"over the limit", strings.NewReader("0123456789x"), "", false, 413, "body larger than 10 bytes\n"},
		{"broken", io.MultiReader(strings.NewReader("abc"), errReader{}), "", false, 400, "cannot read body\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/x", tc.body)
			body, ok := Read(w, r, 10)
			if string(body) != tc.want || ok != tc.wantOK || w.Code != tc.wantCode || w.Body.String() != tc.wantText {
				t.Fatalf("Read = %q, %v; answered %d %q; want %q, %v, %d %q", body, ok, w.Code, w.Body.String(), tc.want, tc.wantOK, tc.wantCode, tc.wantText)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// FuzzParseForm: ParseForm answers exactly what url.ParseQuery answers
// (values, and whether there is an error) for any body.
func FuzzParseForm(f *testing.F) {
	for _, s := range []string{
		"", "a=1", "a=1&a=2&b=", "&&a", "a=%zz&b=2", "a;b=1&c=2", "Body=Hi+there%21&From=%2B15551234567",
		"=x", "a==b", "%41=%42&A=C", "x&x&x=1", strings.Repeat("a=1&", 9999), strings.Repeat("&", 10000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		want, werr := url.ParseQuery(body)
		got, gerr := ParseForm(body)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("ParseForm(%q) error %v; url.ParseQuery %v", body, gerr, werr)
		}
		if !reflect.DeepEqual(map[string][]string(got), map[string][]string(want)) {
			t.Fatalf("ParseForm(%q) = %q; url.ParseQuery %q", body, got, want)
		}
		// The values are independent: appending to one changes no other.
		for k := range got {
			got[k] = append(got[k], "appended")
		}
		for k, v := range want {
			if !reflect.DeepEqual(got[k][:len(got[k])-1], v) {
				t.Fatalf("ParseForm(%q): appending to %q changed another value: %q, want %q", body, k, got[k], v)
			}
		}
	})
}

func BenchmarkParseForm(b *testing.B) {
	body := webhookBody
	b.Run("ParseForm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseForm(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("url.ParseQuery", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := url.ParseQuery(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// webhookBody is an inbound SMS webhook as Twilio posts it.
const webhookBody = "ToCountry=US&ToState=CA&SmsMessageSid=SM0123456789abcdef0123456789abcdef&NumMedia=0&ToCity=&FromZip=94105" +
	"&SmsSid=SM0123456789abcdef0123456789abcdef&FromState=CA&SmsStatus=received&FromCity=SAN+FRANCISCO" +
	"&Body=Hi%21+My+order+was+supposed+to+arrive+yesterday+and+the+tracking+hasn%27t+moved.&FromCountry=US&To=%2B15550000000" +
	"&ToZip=&NumSegments=1&MessageSid=SM0123456789abcdef0123456789abcdef&AccountSid=AC0123456789abcdef0123456789abcdef" +
	"&From=%2B15551234567&ApiVersion=2010-04-01"
