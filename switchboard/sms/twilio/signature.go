package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// SignatureHeader is the header Twilio signs webhooks with.
const SignatureHeader = "X-Twilio-Signature"

// Errors of Validate. The node answers each with 403.
var (
	// ErrMissingSignature: the request has no X-Twilio-Signature.
	ErrMissingSignature = errors.New("twilio: missing " + SignatureHeader + " header")
	// ErrBadSignature: the signature does not match the URL, the form and
	// our auth token.
	ErrBadSignature = errors.New("twilio: " + SignatureHeader + " does not match")
	// ErrNoAuthToken: the Validator has no auth token, so no request can be
	// trusted. Validation fails closed instead of letting everything in.
	ErrNoAuthToken = errors.New("twilio: no auth token configured to check webhook signatures")
)

// Validator checks Twilio webhook signatures.
type Validator struct {
	// AuthToken is the account's auth token (TWILIO_AUTH_TOKEN), the HMAC
	// key. Empty makes every Validate fail.
	AuthToken string
	// PublicURL is the scheme, host and optional path prefix Twilio is
	// configured with (-public-url), e.g. https://sms.example.com or
	// https://example.com/switchboard; the request path is appended. Empty
	// means: rebuild it from the request and the X-Forwarded-Proto /
	// X-Forwarded-Host headers a proxy sets.
	PublicURL string
}

// URL returns the URL Twilio signed for r: PublicURL followed by the
// request's path and query when PublicURL is set; otherwise the scheme from
// X-Forwarded-Proto (else https when the connection is TLS, else http), the
// host from X-Forwarded-Host (else the Host header) and the path and query.
//
// The path and query are taken as the client sent them (r.RequestURI), not
// re-encoded, because Twilio signs the exact string it requested.
func (v *Validator) URL(r *http.Request) string {
	uri := r.RequestURI
	if !strings.HasPrefix(uri, "/") {
		// Client-side requests have no RequestURI; absolute-form targets
		// ("POST http://host/path") are not what Twilio signs either.
		uri = r.URL.RequestURI()
	}
	if v.PublicURL != "" {
		return strings.TrimSuffix(v.PublicURL, "/") + uri
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := strings.ToLower(firstValue(r.Header.Get("X-Forwarded-Proto"))); p == "http" || p == "https" {
		scheme = p
	}
	host := r.Host
	if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" {
		host = h
	}
	return scheme + "://" + host + uri
}

// firstValue returns the first element of a comma-separated header value:
// the one the outermost proxy (the one Twilio talked to) wrote.
func firstValue(h string) string {
	if i := strings.IndexByte(h, ','); i >= 0 {
		h = h[:i]
	}
	return strings.TrimSpace(h)
}

// Validate checks r's X-Twilio-Signature against the URL from v.URL and the
// parsed POST form. Like Twilio's official validators it also accepts the
// signature of the same URL with the default port added or removed
// (https://host/x and https://host:443/x), since Twilio is not consistent
// about it. Comparison is constant-time. A missing header, an empty auth
// token or a mismatch is an error: the check fails closed.
func (v *Validator) Validate(r *http.Request, form url.Values) error {
	if v.AuthToken == "" {
		return ErrNoAuthToken
	}
	got := r.Header.Get(SignatureHeader)
	if got == "" {
		return ErrMissingSignature
	}
	u := v.URL(r)
	s := newSigner(v.AuthToken, form)
	for _, candidate := range urlVariants(u) {
		if hmac.Equal([]byte(s.sign(candidate)), []byte(got)) {
			return nil
		}
	}
	return fmt.Errorf("%w for URL %s (check -public-url and the proxy's X-Forwarded-* headers)", ErrBadSignature, u)
}

// Signature computes Twilio's signature of a webhook: base64 of the
// HMAC-SHA1, keyed with the auth token, of the URL followed by every POST
// parameter as name+value, names sorted, the values of a repeated name
// sorted too. Tests, sbload and the fake Twilio use it to sign requests.
func Signature(authToken, url string, form url.Values) string {
	return newSigner(authToken, form).sign(url)
}

// signer signs one form for one or more URL variants without sorting twice.
type signer struct {
	mac    hash.Hash
	form   url.Values
	keys   []string
	values [][]string
}

func newSigner(authToken string, form url.Values) *signer {
	s := &signer{mac: hmac.New(sha1.New, []byte(authToken)), form: form, keys: make([]string, 0, len(form))}
	for k := range form {
		s.keys = append(s.keys, k)
	}
	slices.Sort(s.keys)
	s.values = make([][]string, len(s.keys))
	for i, k := range s.keys {
		vs := form[k]
		if len(vs) > 1 && !slices.IsSorted(vs) {
			vs = slices.Sorted(slices.Values(vs))
		}
		s.values[i] = vs
	}
	return s
}

func (s *signer) sign(u string) string {
	s.mac.Reset()
	io.WriteString(s.mac, u)
	for i, k := range s.keys {
		for _, v := range s.values[i] {
			io.WriteString(s.mac, k)
			io.WriteString(s.mac, v)
		}
	}
	var sum [sha1.Size]byte
	return base64.StdEncoding.EncodeToString(s.mac.Sum(sum[:0]))
}

// urlVariants returns u, then u with its default port added or removed:
// https://h/x ↔ https://h:443/x, http://h/x ↔ http://h:80/x. Other ports are
// part of what Twilio was configured with and stay as they are. The URL is
// cut as a string, not parsed and re-encoded, so the rest stays byte-exact.
func urlVariants(u string) []string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return []string{u}
	}
	var port string
	switch strings.ToLower(scheme) {
	case "https":
		port = "443"
	case "http":
		port = "80"
	default:
		return []string{u}
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	hostport, tail := rest[:end], rest[end:]
	userinfo := ""
	if i := strings.LastIndexByte(hostport, '@'); i >= 0 {
		userinfo, hostport = hostport[:i+1], hostport[i+1:]
	}
	host, p, hasPort := hostport, "", false
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		host, p, hasPort = hostport[:i], hostport[i+1:], true
	}
	prefix := scheme + "://" + userinfo
	switch {
	case !hasPort:
		return []string{u, prefix + host + ":" + port + tail}
	case p == port:
		return []string{u, prefix + host + tail}
	}
	return []string{u}
}
