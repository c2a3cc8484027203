package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Twilio's published example (https://www.twilio.com/docs/usage/security).
const (
	exampleToken = "12345"
	exampleURL   = "https://mycompany.com/myapp.php?foo=1&bar=2"
	exampleSig   = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
)

func exampleForm() url.Values {
	return url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+14158675309"},
		"Digits":  {"1234"},
		"From":    {"+14158675309"},
		"To":      {"+18005551212"},
	}
}

func TestSignaturePublishedVector(t *testing.T) {
	if got := Signature(exampleToken, exampleURL, exampleForm()); got != exampleSig {
		t.Fatalf("Signature = %q, want %q", got, exampleSig)
	}
}

// webhook builds the request Twilio would send for the example to target
// (path and query), with the form as body.
func webhook(target string, form url.Values, sig string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		r.Header.Set(SignatureHeader, sig)
	}
	return r
}

func TestValidate(t *testing.T) {
	with := func(mod func(url.Values)) url.Values { f := exampleForm(); mod(f); return f }
	pub := "https://mycompany.com"
	tests := []struct {
		name    string
		token   string
		public  string
		target  string
		form    url.Values
		sig     string
		wantErr error // nil = valid
	}{
		{"published example", exampleToken, pub, "/myapp.php?foo=1&bar=2", exampleForm(), exampleSig, nil},
		{"public URL with trailing slash", exampleToken, pub + "/", "/myapp.php?foo=1&bar=2", exampleForm(), exampleSig, nil},
		{"changed param value", exampleToken, pub, "/myapp.php?foo=1&bar=2", with(func(f url.Values) { f.Set("Digits", "1235") }), exampleSig, ErrBadSignature},
		{"extra param", exampleToken, pub, "/myapp.php?foo=1&bar=2", with(func(f url.Values) { f.Set("Body", "hi") }), exampleSig, ErrBadSignature},
		{"extra empty param", exampleToken, pub, "/myapp.php?foo=1&bar=2", with(func(f url.Values) { f.Set("Body", "") }), exampleSig, ErrBadSignature},
		{"repeated param", exampleToken, pub, "/myapp.php?foo=1&bar=2", with(func(f url.Values) { f.Add("Digits", "1234") }), exampleSig, ErrBadSignature},
		{"missing param", exampleToken, pub, "/myapp.php?foo=1&bar=2", with(func(f url.Values) { f.Del("Caller") }), exampleSig, ErrBadSignature},
		{"value moved to another key", exampleToken, pub, "/myapp.php?foo=1&bar=2", with(func(f url.Values) { f.Del("Digits"); f.Set("Digitz", "1234") }), exampleSig, ErrBadSignature},
		{"different path", exampleToken, pub, "/myapp2.php?foo=1&bar=2", exampleForm(), exampleSig, ErrBadSignature},
		{"different query value", exampleToken, pub, "/myapp.php?foo=2&bar=2", exampleForm(), exampleSig, ErrBadSignature},
		{"query reordered", exampleToken, pub, "/myapp.php?bar=2&foo=1", exampleForm(), exampleSig, ErrBadSignature},
		{"query dropped", exampleToken, pub, "/myapp.php", exampleForm(), exampleSig, ErrBadSignature},
		{"different scheme", exampleToken, "http://mycompany.com", "/myapp.php?foo=1&bar=2", exampleForm(), exampleSig, ErrBadSignature},
		{"different host", exampleToken, "https://evil.example", "/myapp.php?foo=1&bar=2", exampleForm(), exampleSig, ErrBadSignature},
		{"wrong token", "12346", pub, "/myapp.php?foo=1&bar=2", exampleForm(), exampleSig, ErrBadSignature},
		{"empty header", exampleToken, pub, "/myapp.php?foo=1&bar=2", exampleForm(), "", ErrMissingSignature},
		{"garbage base64", exampleToken, pub, "/myapp.php?foo=1&bar=2", exampleForm(), "!!!not-base64***", ErrBadSignature},
		{"truncated signature", exampleToken, pub, "/myapp.php?foo=1&bar=2", exampleForm(), exampleSig[:20], ErrBadSignature},
		{"signature case changed", exampleToken, pub, "/myapp.php?foo=1&bar=2", exampleForm(), strings.ToLower(exampleSig), ErrBadSignature},
		{"no auth token fails closed", "", pub, "/myapp.php?foo=1&bar=2", exampleForm(), exampleSig, ErrNoAuthToken},
		{"signed with :443, configured without", exampleToken, pub, "/myapp.php?foo=1&bar=2", exampleForm(),
			Signature(exampleToken, "https://mycompany.com:443/myapp.php?foo=1&bar=2", exampleForm()), nil},
		{"signed without :443, configured with", exampleToken, "https://mycompany.com:443", "/myapp.php?foo=1&bar=2", exampleForm(), exampleSig, nil},
		{"http :80 variant", exampleToken, "http://mycompany.com", "/x", exampleForm(),
			Signature(exampleToken, "http://mycompany.com:80/x", exampleForm()), nil},
		{"other port is not dropped", exampleToken, "https://mycompany.com:8443", "/myapp.php?foo=1&bar=2", exampleForm(), exampleSig, ErrBadSignature},
		{"wrong default port is not a variant", exampleToken, pub, "/myapp.php?foo=1&bar=2", exampleForm(),
			Signature(exampleToken, "https://mycompany.com:80/myapp.php?foo=1&bar=2", exampleForm()), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Validator{AuthToken: tt.token, PublicURL: tt.public}
			err := v.Validate(webhook(tt.target, tt.form, tt.sig), tt.form)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSignatureRepeatedKeys(t *testing.T) {
	// Repeated names: values are signed sorted, so their order in the body
	// does not matter, but each one counts.
	a := url.Values{"MediaUrl": {"b", "a"}, "X": {"1"}}
	b := url.Values{"MediaUrl": {"a", "b"}, "X": {"1"}}
	if Signature("t", "https://h/p", a) != Signature("t", "https://h/p", b) {
		t.Fatal("signature depends on the order of repeated values")
	}
	manual := Signature("t", "https://h/pMediaUrlaMediaUrlbX1", url.Values{})
	if got := Signature("t", "https://h/p", a); got != manual {
		t.Fatalf("Signature = %s, want the signature of URL+MediaUrla+MediaUrlb+X1 (%s)", got, manual)
	}
	if Signature("t", "https://h/p", url.Values{"MediaUrl": {"a"}, "X": {"1"}}) == manual {
		t.Fatal("dropping a repeated value keeps the signature")
	}
}

// Twilio's scheme concatenates names and values without delimiters, so
// moving bytes across a name/value boundary keeps the signature. This is
// Twilio's algorithm, not ours to fix; ParseInbound's strict field checks
// are what keep such forms harmless.
func TestSignatureHasNoDelimiters(t *testing.T) {
	f := exampleForm()
	f.Del("Digits")
	f.Set("Digit", "s1234")
	if Signature(exampleToken, exampleURL, f) != exampleSig {
		t.Fatal("expected Twilio's delimiter-free concatenation")
	}
}

func TestValidatorURL(t *testing.T) {
	tests := []struct {
		name    string
		public  string
		target  string
		host    string
		headers map[string]string
		tls     bool
		want    string
	}{
		{"public URL wins over everything", "https://sms.example.com", "/sms/twilio?x=1", "10.0.0.5:8080",
			map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Host": "other"}, false, "https://sms.example.com/sms/twilio?x=1"},
		{"public URL with path prefix", "https://example.com/switchboard/", "/sms/twilio", "internal:8080", nil, false, "https://example.com/switchboard/sms/twilio"},
		{"plain http, Host header", "", "/sms/twilio", "node1:8080", nil, false, "http://node1:8080/sms/twilio"},
		{"direct TLS", "", "/sms/twilio", "sms.example.com", nil, true, "https://sms.example.com/sms/twilio"},
		{"Heroku: X-Forwarded-Proto https", "", "/sms/twilio", "app.herokuapp.com",
			map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"}, false, "https://app.herokuapp.com/sms/twilio"},
		{"nginx: X-Forwarded-Host and Proto", "", "/sms/twilio", "127.0.0.1:8080",
			map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sms.example.com"}, false, "https://sms.example.com/sms/twilio"},
		{"proxy chain: first value", "", "/sms/twilio", "127.0.0.1:8080",
			map[string]string{"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "sms.example.com, lb.internal"}, false, "https://sms.example.com/sms/twilio"},
		{"nonsense proto ignored", "", "/sms/twilio", "h", map[string]string{"X-Forwarded-Proto": "gopher"}, false, "http://h/sms/twilio"},
		{"escaped path kept byte-exact", "https://p.example", "/sms/twilio%2Fstatus?a=%7E", "h", nil, false, "https://p.example/sms/twilio%2Fstatus?a=%7E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tt.target, nil)
			r.Host = tt.host
			if !tt.tls {
				r.TLS = nil
			} else {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			v := &Validator{PublicURL: tt.public}
			if got := v.URL(r); got != tt.want {
				t.Fatalf("URL = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateBehindProxy(t *testing.T) {
	form := exampleForm()
	// Twilio called https://mycompany.com/myapp.php?foo=1&bar=2; the node
	// sees http://127.0.0.1:8080/... through the proxy.
	tests := []struct {
		name    string
		public  string
		headers map[string]string
		ok      bool
	}{
		{"public URL set", "https://mycompany.com", nil, true},
		{"forwarded proto and host", "", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "mycompany.com"}, true},
		{"forwarded host only: scheme wrong", "", map[string]string{"X-Forwarded-Host": "mycompany.com"}, false},
		{"no proxy headers, no public URL", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := webhook("/myapp.php?foo=1&bar=2", form, exampleSig)
			r.Host = "127.0.0.1:8080"
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			v := &Validator{AuthToken: exampleToken, PublicURL: tt.public}
			err := v.Validate(r, form)
			if (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestURLVariants(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://h/x", "https://h/x https://h:443/x"},
		{"https://h:443/x?q=1", "https://h:443/x?q=1 https://h/x?q=1"},
		{"http://h", "http://h http://h:80"},
		{"http://h:80?a", "http://h:80?a http://h?a"},
		{"https://h:8443/x", "https://h:8443/x"},
		{"https://[::1]/x", "https://[::1]/x https://[::1]:443/x"},
		{"https://[::1]:443/x", "https://[::1]:443/x https://[::1]/x"},
		{"https://u:p@h/x", "https://u:p@h/x https://u:p@h:443/x"},
		{"ftp://h/x", "ftp://h/x"},
		{"garbage", "garbage"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := strings.Join(urlVariants(tt.in), " "); got != tt.want {
				t.Fatalf("urlVariants(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzValidate: any URL, form and header must give nil only for the right
// signature, and never panic.
func FuzzValidate(f *testing.F) {
	f.Add("/myapp.php?foo=1&bar=2", exampleForm().Encode(), exampleSig)
	f.Add("/sms/twilio", "Body=hi&MessageSid=SM1", "")
	f.Add("/", "a=1&a=2&b", "xx==")
	f.Fuzz(func(t *testing.T, target, body, sig string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") {
			return
		}
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		r, err := http.NewRequest(http.MethodPost, "http://x"+target, nil)
		if err != nil {
			return
		}
		r.RequestURI = target
		r.Header.Set(SignatureHeader, sig)
		v := &Validator{AuthToken: exampleToken, PublicURL: "https://mycompany.com"}
		err = v.Validate(r, form)
		want := Signature(exampleToken, "https://mycompany.com"+target, form)
		if sig == want && err != nil {
			t.Fatalf("right signature refused: %v", err)
		}
		if err == nil && sig != want && sig != Signature(exampleToken, "https://mycompany.com:443"+target, form) {
			t.Fatalf("accepted signature %q, want %q", sig, want)
		}
	})
}

// typicalInbound is the form of an inbound SMS as Twilio posts it.
func typicalInbound() url.Values {
	return url.Values{
		"ToCountry": {"US"}, "ToState": {"CA"}, "SmsMessageSid": {"SM0123456789abcdef0123456789abcdef"},
		"NumMedia": {"0"}, "ToCity": {"SAN FRANCISCO"}, "FromZip": {"94105"},
		"SmsSid": {"SM0123456789abcdef0123456789abcdef"}, "FromState": {"CA"}, "SmsStatus": {"received"},
		"FromCity": {"SAN FRANCISCO"}, "Body": {"Hi, do you have the camcorder in stock? I'd like to pick it up today."},
		"FromCountry": {"US"}, "To": {"+15550001111"}, "MessagingServiceSid": {"MG0123456789abcdef0123456789abcdef"},
		"ToZip": {"94105"}, "NumSegments": {"1"}, "ReferralNumMedia": {"0"},
		"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "AccountSid": {"AC0123456789abcdef0123456789abcdef"},
		"From": {"+15551234567"}, "ApiVersion": {"2010-04-01"},
	}
}

func BenchmarkValidate(b *testing.B) {
	form := typicalInbound()
	const token = "0123456789abcdef0123456789abcdef"
	v := &Validator{AuthToken: token, PublicURL: "https://sms.example.com"}
	r := webhook("/sms/twilio", form, Signature(token, "https://sms.example.com/sms/twilio", form))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Validate(r, form); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHMACBaseline is the floor under BenchmarkValidate: keying
// HMAC-SHA1 and hashing the same, already concatenated bytes once, with no
// sorting, no URL rebuilding and no encoding.
func BenchmarkHMACBaseline(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := newSigner("", typicalInbound())
	msg := append([]byte("https://sms.example.com/sms/twilio"), s.m.buf[:s.params]...)
	s.release()
	b.ReportAllocs()
	for b.Loop() {
		h := hmac.New(sha1.New, key)
		h.Write(msg)
		h.Sum(nil)
	}
}
