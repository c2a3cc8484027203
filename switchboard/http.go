package switchboard

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/switchboard/internal/httpbody"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio"
	"github.com/switchboard/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/switchboard/token"
)

func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Switchboard is active")
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := n.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready")
	})
	mux.HandleFunc("POST /sms/twilio", n.handleInbound)
	mux.HandleFunc("POST /sms/twilio/status", n.handleStatus)
	mux.HandleFunc("GET /agent", n.handleAgent)
	mux.HandleFunc("GET /conversations/{phone}", n.admin(n.handleConversation))
	mux.HandleFunc("GET /search", n.admin(n.serveSearch))
	mux.HandleFunc("GET /queue", n.admin(n.handleQueue))
	n.navRoutes(mux)
	n.deskRoutes(mux)
	return n.countStatus(mux)
}

// statusRecorder remembers the status code for the 4xx/5xx metrics. It keeps
// http.Hijacker working for WebSocket upgrades.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack lets the WebSocket upgrader take the connection; a hijacked
// connection counts as switching protocols.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if s.code == 0 {
		s.code = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(s.ResponseWriter).Hijack()
}

func (n *Node) countStatus(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		switch {
		case rec.code >= 500:
			n.metrics.http5xx.Inc()
		case rec.code >= 400:
			n.metrics.http4xx.Inc()
		}
	})
}

// readForm reads a form body with the size limit. It answers the request
// itself (413 or 400) and returns false when the body is unusable.
func (n *Node) readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	if strings.TrimSpace(strings.ToLower(ct)) != "application/x-www-form-urlencoded" {
		http.Error(w, "body must be application/x-www-form-urlencoded", http.StatusBadRequest)
		return nil, false
	}
	body, ok := httpbody.Read(w, r, n.opts.MaxBody)
	if !ok {
		return nil, false
	}
	form, err := httpbody.ParseForm(string(body))
	if err != nil {
		http.Error(w, "malformed form body", http.StatusBadRequest)
		return nil, false
	}
	return form, true
}

// checkSignature answers 403 and returns false unless the webhook is signed
// by Twilio (or checking is explicitly off).
func (n *Node) checkSignature(w http.ResponseWriter, r *http.Request, form url.Values) bool {
	if n.opts.InsecureSkipSignature {
		return true
	}
	if err := n.validator.Validate(r, form); err != nil {
		n.log.Warn("webhook refused: bad signature", "path", r.URL.Path, "url", n.validator.URL(r), "err", err)
		http.Error(w, "invalid signature", http.StatusForbidden)
		return false
	}
	return true
}

func writeTwiML(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, twilio.EmptyTwiML)
}

// handleInbound makes an inbound SMS durable (accept.go), then answers 200.
// It is stored and routed when the log is applied (apply.go).
func (n *Node) handleInbound(w http.ResponseWriter, r *http.Request) {
	born := n.now()
	form, ok := n.readForm(w, r)
	if !ok {
		n.metrics.smsBad.Inc()
		return
	}
	if !n.checkSignature(w, r, form) {
		n.metrics.smsBad.Inc()
		return
	}
	in, err := twilio.ParseInbound(form)
	if err != nil {
		n.metrics.smsBad.Inc()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	start := n.now()
	dup, err := n.cluster.inbound(r.Context(), store.Inbound{Sid: in.Sid, Phone: in.From, To: in.To, Text: in.Body, FromCountry: in.FromCountry, Media: in.Media, OptOut: in.OptOut}, born)
	n.metrics.storeLatency.Observe(n.now().Sub(start))
	if err != nil {
		// Not durable: Twilio retries on a 5xx, so nothing is lost.
		n.log.Error("accept inbound", "sid", in.Sid, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if dup {
		n.metrics.smsDuplicate.Inc()
	} else {
		n.metrics.smsIn.Inc()
	}
	n.metrics.webhookLatency.Observe(n.now().Sub(born))
	writeTwiML(w)
}

// handleStatus records a delivery status callback. A status never moves
// backwards; unknown message sids are acknowledged (Twilio would retry
// forever) and logged.
func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	form, ok := n.readForm(w, r)
	if !ok {
		return
	}
	if !n.checkSignature(w, r, form) {
		return
	}
	up, err := twilio.ParseStatus(form)
	if errors.Is(err, twilio.ErrUnknownStatus) {
		// A status Twilio added after this code was written: nothing to
		// record, and a 4xx would only make Twilio retry.
		n.log.Info("status callback with an unknown status ignored", "err", err)
		writeTwiML(w)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.metrics.statusCallbacks.Inc()
	detail := ""
	if up.ErrorCode != "" {
		detail = "provider error " + up.ErrorCode
	}
	msg, err := n.store.MessageByProviderID(up.Sid)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	// An unknown provider id (a callback before the send is recorded) is
	// resolved, or held, where the log is applied (apply.go).
	if err := n.cluster.status(r.Context(), msg, up.Status, up.Sid, detail); err != nil {
		n.log.Error("status callback", "sid", up.Sid, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	writeTwiML(w)
}

// setStatus records a status change and, when it advanced, tells the agent.
func (n *Node) setStatus(ctx context.Context, id string, st protocol.Status, providerID, detail string) error {
	msg, _, err := n.store.SetStatusCode(ctx, id, st, providerID, store.ErrorCodeOf(detail))
	if err != nil {
		return err
	}
	// Recorded here at once (this node's outbox guard), and through the
	// log for every node and for the agent, wherever it is.
	return n.cluster.status(ctx, msg, st, providerID, detail)
}

// isAdmin reports whether tok is the admin token (and one is set).
func (n *Node) isAdmin(tok string) bool {
	return n.opts.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(n.opts.AdminToken)) == 1
}

func (n *Node) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !n.isAdmin(tok) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard admin"`)
			http.Error(w, "admin token required", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func (n *Node) handleConversation(w http.ResponseWriter, r *http.Request) {
	phone, err := protocol.NormalizeAddress(r.PathValue("phone"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	list, err := n.store.Conversation(phone)
	if err != nil {
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if list == nil {
		list = []protocol.Message{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

// handleAgent authenticates an agent and upgrades to a WebSocket session.
func (n *Node) handleAgent(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		n.metrics.wsRejected.Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
		http.Error(w, "agent token required", http.StatusUnauthorized)
		return
	}
	supervisor := n.isAdmin(tok) // a supervisor session (flow.go)
	claims, err := token.Verify([]byte(n.opts.Secret), tok, n.now())
	if supervisor {
		claims, err = token.Claims{Agent: supervisorName}, nil
	}
	if err != nil {
		n.metrics.wsRejected.Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard", error="invalid_token"`)
		msg := "invalid agent token"
		if errors.Is(err, token.ErrExpired) {
			msg = "agent token expired"
		}
		http.Error(w, msg, http.StatusUnauthorized)
		return
	}
	if n.stopping.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if left := n.flooded.left(claims.Agent, n.now()); left > 0 {
		n.metrics.wsRejected.Inc()
		secs := int(math.Ceil(left.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		http.Error(w, fmt.Sprintf("%s: a connection of %s flooded this node; reconnect in %d s", closeRateLimited, claims.Agent, secs), http.StatusTooManyRequests)
		return
	}
	up := websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		WriteBufferPool: &writeBuffers, // idle agents hold no write buffer
		CheckOrigin:     n.checkOrigin,
	}
	conn, err := up.Upgrade(w, r, nil) // answers 403 for a cross-origin upgrade
	if err != nil {
		n.metrics.wsRejected.Inc()
		n.log.Warn("agent upgrade refused", "agent", claims.Agent, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	n.metrics.wsConnections.Inc()
	s := newSession(n, conn, claims.Agent, claims.Capacity)
	if claims.Expires != 0 {
		s.expires = time.Unix(claims.Expires, 0) // 0: no expiry (a supervisor's admin token)
	}
	n.log.Info("agent connected", "agent", claims.Agent, "remote", r.RemoteAddr)
	n.live.Store(s, struct{}{})
	// stopped ends a session whose reader cannot start: the node began
	// waiting for its goroutines (Shutdown) meanwhile.
	stopped := func() {
		s.withoutReader()
		s.close(websocket.CloseGoingAway, "the switchboard is stopping")
		n.live.Delete(s)
	}
	if supervisor {
		s.supervisor = true
		n.cluster.connectSupervisor(s)
		if !n.goFunc(func() {
			s.readLoop()
			n.live.Delete(s)
			n.cluster.disconnectSupervisor(s)
		}) {
			stopped()
			n.cluster.disconnectSupervisor(s)
		}
		return
	}
	if err := n.cluster.connect(s); err != nil {
		n.log.Warn("announce agent connection", "agent", s.agent, "err", err)
		s.enqueue(protocol.ErrorFrame(protocol.CodeUnavailable, "the switchboard cannot reach its message broker; reconnect shortly", ""), time.Time{})
		s.withoutReader()
		s.close(websocket.CloseTryAgainLater, "broker unavailable")
		n.cluster.disconnect(s)
		n.live.Delete(s)
		return
	}
	if !n.goFunc(func() {
		s.readLoop()
		n.live.Delete(s)
		n.cluster.disconnect(s)
		n.log.Info("agent disconnected", "agent", s.agent)
	}) {
		stopped()
		n.cluster.disconnect(s)
	}
}

// checkOrigin allows clients that send no Origin (terminal clients), the
// node's own host, the public URL's host and configured origins. Browsers
// on other sites cannot open agent sessions with a stolen token in a URL.
func (n *Node) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if n.opts.PublicURL != "" {
		if pu, err := url.Parse(n.opts.PublicURL); err == nil && strings.EqualFold(pu.Host, u.Host) {
			return true
		}
	}
	for _, o := range n.opts.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}
