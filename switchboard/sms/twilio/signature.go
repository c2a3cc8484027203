package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
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
// parsed POST form. Pass r.PostForm, not r.Form: query parameters are
// signed as part of the URL, not again as parameters. Like Twilio's official validators it also accepts the
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
	defer s.release()
	var sig [sigLen]byte
	if hmac.Equal(s.sign(&sig, u), []byte(got)) {
		return nil
	}
	// The port variants cost another HMAC each; only a mismatch pays.
	for _, alt := range urlVariants(u)[1:] {
		if hmac.Equal(s.sign(&sig, alt), []byte(got)) {
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
	var sig [sigLen]byte
	s := newSigner(authToken, form)
	defer s.release()
	return string(s.sign(&sig, url))
}

// sigLen is the length of a base64-encoded SHA-1 MAC: 4*ceil(20/3).
const sigLen = (sha1.Size + 2) / 3 * 4

// signer signs one form for one or more URL variants: the sorted
// parameters are concatenated once, into the buffer of a pooled MAC.
type signer struct {
	m      *keyedMAC
	params int // the parameters are m.buf[:params]
}

// keyedMAC is an HMAC-SHA1 with its key and a buffer, kept in macPool:
// hmac.New costs 8 allocations, and every webhook needs one.
type keyedMAC struct {
	key string
	mac hash.Hash
	buf []byte
}

var macPool sync.Pool // *keyedMAC

func newSigner(authToken string, form url.Values) *signer {
	m, _ := macPool.Get().(*keyedMAC)
	if m == nil || m.key != authToken {
		m = &keyedMAC{key: authToken, mac: hmac.New(sha1.New, []byte(authToken))}
	}
	var kb [16]string // webhooks carry a few dozen parameters at most
	keys := kb[:0]
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	params := m.buf[:0]
	for _, k := range keys {
		vs := form[k]
		if len(vs) > 1 && !slices.IsSorted(vs) {
			vs = slices.Sorted(slices.Values(vs))
		}
		for _, v := range vs {
			params = append(append(params, k...), v...)
		}
	}
	m.buf = params
	return &signer{m: m, params: len(params)}
}

// release returns the MAC to the pool; s is unusable after.
func (s *signer) release() {
	if cap(s.m.buf) <= 64<<10 {
		macPool.Put(s.m)
	}
	s.m = nil
}

// sign writes the base64 signature for URL u into out and returns it.
func (s *signer) sign(out *[sigLen]byte, u string) []byte {
	m := s.m
	m.mac.Reset()
	// One Write of URL+params: hash.Hash has no WriteString, and
	// converting each piece separately allocates. The URL goes after the
	// parameters in the buffer and is written first.
	m.buf = append(m.buf[:s.params], u...)
	m.mac.Write(m.buf[s.params:])
	m.mac.Write(m.buf[:s.params])
	var sum [sha1.Size]byte
	base64.StdEncoding.Encode(out[:], m.mac.Sum(sum[:0]))
	return out[:]
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
