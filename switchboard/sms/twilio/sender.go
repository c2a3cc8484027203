package twilio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms"
)

// DefaultTimeout bounds one request to Twilio's API.
const DefaultTimeout = 10 * time.Second

// Config is how to reach Twilio's REST API.
type Config struct {
	// AccountSID (TWILIO_ACCOUNT_SID) is the account, "AC..." and the
	// basic-auth user. Required.
	AccountSID string
	// AuthToken (TWILIO_AUTH_TOKEN) is the basic-auth password and the
	// webhook signing key. Required.
	AuthToken string
	// From (TWILIO_FROM) is our number in E.164 form, the sender of replies
	// whose Outgoing.From is empty. Required.
	From string
	// APIURL (TWILIO_API_URL) is the base URL of the REST API, e.g.
	// http://127.0.0.1:PORT for the fake in fakeapi; it may carry a path
	// prefix. Empty means Twilio's own https://api.twilio.com.
	APIURL string
	// HTTPClient supplies the transport (proxy, TLS settings). Only its
	// Transport is used; timeouts come from Timeout and redirects are never
	// followed. nil means a private clone of http.DefaultTransport.
	HTTPClient *http.Client
	// Timeout bounds each request, answer body included. Zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// check validates cfg and fills in defaults, naming the variable a user
// sets.
func (cfg *Config) check() (*url.URL, error) {
	switch {
	case cfg.AccountSID == "":
		return nil, errors.New("twilio: TWILIO_ACCOUNT_SID is required")
	case !alnum(cfg.AccountSID):
		return nil, errors.New("twilio: TWILIO_ACCOUNT_SID must be letters and digits (AC...)")
	case cfg.AuthToken == "":
		return nil, errors.New("twilio: TWILIO_AUTH_TOKEN is required")
	case !alnum(cfg.AuthToken):
		// twilio-go refuses such credentials on every request; say so now.
		return nil, errors.New("twilio: TWILIO_AUTH_TOKEN must be letters and digits")
	case cfg.From == "":
		return nil, errors.New("twilio: TWILIO_FROM is required")
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("twilio: timeout must not be negative, got %v", cfg.Timeout)
	}
	if _, err := protocol.NormalizePhone(cfg.From); err != nil {
		return nil, fmt.Errorf("twilio: TWILIO_FROM %q: %w", cfg.From, err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.APIURL == "" {
		return nil, nil
	}
	u, err := url.Parse(cfg.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("twilio: TWILIO_API_URL %q must be an http(s) base URL like http://127.0.0.1:8081", cfg.APIURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Sender sends SMS through Twilio's Messages API with twilio-go. It
// implements sms.Sender and is safe for concurrent use.
//
// twilio-go builds its requests without a context and with a fixed host
// (https://api.twilio.com). Sender keeps the library but gives each call
// its own small client.Client whose transport attaches the caller's context
// (so cancellation and Timeout reach the socket) and, when APIURL is set,
// rewrites scheme, host and path prefix. Connections are pooled in one
// shared base transport.
type Sender struct {
	cfg   Config
	api   *url.URL // nil: Twilio itself
	creds *client.Credentials
	base  http.RoundTripper
	owned *http.Transport // our own base transport, closed by Close

	// Paging of Find; tests shrink them (export_test.go).
	findPageSize, findMaxPages int
}

var _ sms.Sender = (*Sender)(nil)

// MaxIdleConns is how many idle connections to the API a Sender's own
// transport keeps: at least as many as sends run at once.
const MaxIdleConns = 64

// NewSender validates cfg and returns a Sender. It makes no request.
func NewSender(cfg Config) (*Sender, error) {
	api, err := cfg.check()
	if err != nil {
		return nil, err
	}
	s := &Sender{cfg: cfg, api: api, creds: client.NewCredentials(cfg.AccountSID, cfg.AuthToken),
		findPageSize: FindPageSize, findMaxPages: FindMaxPages}
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		s.base = cfg.HTTPClient.Transport
	} else {
		s.owned = http.DefaultTransport.(*http.Transport).Clone()
		// The default keeps 2 idle connections per host: with more sends
		// at once (the node's send workers), every other send would dial,
		// and against Twilio do a TLS handshake, again.
		s.owned.MaxIdleConnsPerHost = MaxIdleConns
		s.base = s.owned
	}
	return s, nil
}

// Name is "twilio".
func (s *Sender) Name() string { return "twilio" }

// Close releases idle connections of the Sender's own transport. The Sender
// stays usable.
func (s *Sender) Close() error {
	if s.owned != nil {
		s.owned.CloseIdleConnections()
	}
	return nil
}

// Send makes one CreateMessage request. The error is always a
// *sms.SendError: temporary for network errors, timeouts, HTTP 5xx and 429,
// permanent for other refusals (StatusCode and Twilio's Code set), for the
// caller's cancellation, and for a success answer that cannot be read
// (retrying that could send the SMS twice).
//
// MaybeSent is set when the request was written to the connection but no
// HTTP status came back (a timeout, a reset or EOF, the caller's
// cancellation): Twilio may have created the message, so look it up with
// Find before sending it again. A request whose writing had started but
// had not reported its end when the call failed counts as written too;
// dial errors (connection refused, DNS, TLS handshake) never do.
func (s *Sender) Send(ctx context.Context, m sms.Outgoing) (sms.Result, error) {
	from := m.From
	if from == "" {
		from = s.cfg.From
	}
	if m.To == "" {
		return sms.Result{}, &sms.SendError{Message: "message " + m.ID + " has no To number"}
	}
	params := &openapi.CreateMessageParams{}
	params.SetTo(m.To).SetFrom(from).SetBody(m.Body)
	if m.StatusCallback != "" {
		params.SetStatusCallback(m.StatusCallback)
	}
	api, call, cancel := s.service(ctx)
	defer cancel()
	msg, err := api.CreateMessage(params)
	if err != nil {
		se := s.classify(ctx, call, err)
		se.MaybeSent = call.maybeSent()
		return sms.Result{}, se
	}
	sid := deref(msg.Sid)
	if sid == "" {
		return sms.Result{}, &sms.SendError{StatusCode: call.status, Message: "Twilio accepted the message but its answer has no sid; not retried to avoid a duplicate"}
	}
	status, ok := MapStatus(deref(msg.Status))
	if !ok {
		status = protocol.StatusQueued
	}
	return sms.Result{ProviderID: sid, Status: status}, nil
}

// service returns a twilio-go API bound to one call's context. cancel must
// be called when the call is done (answer body read).
func (s *Sender) service(ctx context.Context) (*openapi.ApiService, *callTransport, context.CancelFunc) {
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	call := &callTransport{ctx: callCtx, base: s.base, api: s.api}
	c := &client.Client{
		Credentials: s.creds,
		HTTPClient: &http.Client{
			Transport:     call,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	c.SetAccountSid(s.cfg.AccountSID)
	// A RequestHandler without Edge/Region: TWILIO_EDGE and TWILIO_REGION
	// from the environment must not change the host behind our back.
	return openapi.NewApiService(&client.RequestHandler{Client: c}), call, cancel
}

// classify turns a twilio-go error into a *sms.SendError. Errors name the
// URL actually used (TWILIO_API_URL), not the Twilio URL twilio-go built.
func (s *Sender) classify(parent context.Context, call *callTransport, err error) *sms.SendError {
	if ue, ok := errors.AsType[*url.Error](err); ok && call.url != "" {
		ue.URL = call.url
	}
	if perr := parent.Err(); perr != nil {
		if !errors.Is(err, perr) {
			err = fmt.Errorf("%w: %w", perr, err)
		}
		return &sms.SendError{StatusCode: call.status, Message: "cancelled by caller", Err: err}
	}
	if e, ok := errors.AsType[*client.TwilioRestError](err); ok {
		code := e.Status
		if code == 0 {
			code = call.status
		}
		return &sms.SendError{Temporary: sms.TemporaryStatus(code), StatusCode: code, Code: e.Code, Message: e.Message, Err: err}
	}
	if e, ok := errors.AsType[*client.RestErrorV1](err); ok {
		code := e.HttpStatusCode
		if code == 0 {
			code = call.status
		}
		return &sms.SendError{Temporary: sms.TemporaryStatus(code), StatusCode: code, Code: e.Code, Message: e.Message, Err: err}
	}
	switch {
	case call.status >= 400:
		// An error answer that is not Twilio's JSON, e.g. an HTML 502 from
		// a proxy on the way.
		return &sms.SendError{Temporary: sms.TemporaryStatus(call.status), StatusCode: call.status, Message: snippet(call.errBody), Err: err}
	case call.status != 0:
		return &sms.SendError{StatusCode: call.status, Message: "unreadable answer; not retried to avoid a duplicate", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &sms.SendError{Temporary: true, Message: fmt.Sprintf("no answer from %s within %v", s.host(), s.cfg.Timeout), Err: err}
	}
	// No answer at all: connection refused, reset, DNS, TLS.
	return &sms.SendError{Temporary: true, Message: "network error", Err: err}
}

// host names the API the sender talks to in errors: TWILIO_API_URL's host,
// else Twilio's.
func (s *Sender) host() string {
	if s.api != nil {
		return s.api.Host
	}
	return "api.twilio.com"
}

// callTransport carries one call's context into twilio-go's requests,
// redirects them to APIURL and remembers the last answer's status and
// whether a request reached the connection. It serves the requests of one
// call, which are sequential.
type callTransport struct {
	ctx     context.Context
	base    http.RoundTripper
	api     *url.URL
	status  int
	errBody []byte
	// url is the URL the last request was sent to (after the APIURL
	// rewrite), for errors: twilio-go's name Twilio's host.
	url string

	// Set by httptrace hooks, which the transport may call from its own
	// goroutines, even after RoundTrip returned.
	wrote   atomic.Bool  // a request was written completely
	writing atomic.Int32 // connections got whose write has not reported its end
}

// maybeSent reports whether the call's request may have reached Twilio
// without an answer being read: it was written, or its writing had begun
// and had not ended when the call failed (the transport reports the end of
// a write from another goroutine, possibly just after giving up; unknown
// counts as maybe, a lookup being cheaper than a duplicate SMS).
func (t *callTransport) maybeSent() bool {
	return t.status == 0 && (t.wrote.Load() || t.writing.Load() > 0)
}

// maxErrBody bounds how much of an error answer is kept.
const maxErrBody = 64 << 10

func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	trace := &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { t.writing.Add(1) },
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				t.wrote.Store(true)
			}
			t.writing.Add(-1)
		},
	}
	r := req.WithContext(httptrace.WithClientTrace(t.ctx, trace))
	if t.api != nil {
		u := *req.URL
		u.Scheme, u.Host = t.api.Scheme, t.api.Host
		u.Path = t.api.Path + u.Path
		u.RawPath = ""
		r.URL = &u
		r.Host = ""
	}
	t.url = r.URL.Redacted()
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	t.status = resp.StatusCode
	if resp.StatusCode >= 400 {
		// twilio-go does not close error bodies; read and close here so the
		// connection goes back to the pool, and keep the text for errors
		// that are not Twilio JSON.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
		resp.Body.Close()
		t.errBody = body
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp, nil
}

// snippet makes an error body loggable: printable, one line, short.
func snippet(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(b))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "..."
	}
	return s
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
