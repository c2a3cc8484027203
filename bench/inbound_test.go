// Package bench_test measures whole paths through a real node from the
// outside, through the exported API only (switchboard.New, the HTTP
// webhook, the agent WebSocket), so that the figures stay comparable while
// the node's internals change.
package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/switchboard"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	"github.com/switchboard/switchboard/switchboard/token"
)

const (
	account   = "AC00000000000000000000000000000000"
	authToken = "0123456789abcdef0123456789abcdef"
	ourNumber = "+15550000000"
	secret    = "bench-secret-bench-secret-bench-secret"
	// phones is how many customers the benchmark texts from, in turn. Each
	// conversation is assigned once, before the timer starts, so every
	// measured message arrives at the agent as an "update" frame.
	phones = 8
)

// driver is the outside of the inbound path: a keep-alive HTTP client that
// posts signed Twilio webhooks, and one agent on a WebSocket. It is the
// same for the node and for the baseline, so that their difference is the
// node's.
type driver struct {
	client  *http.Client
	hookURL string // where to post, and the URL the signature covers
	conn    *websocket.Conn
	buf     bytes.Buffer
	seq     int
}

// send posts inbound message d.seq from customer d.seq%phones and waits
// until the agent receives a frame holding its marker.
func (d *driver) send(b *testing.B) {
	d.seq++
	marker := "bench." + strconv.Itoa(d.seq) + "."
	form := url.Values{
		"MessageSid": {fmt.Sprintf("SM%032d", d.seq)}, "SmsSid": {fmt.Sprintf("SM%032d", d.seq)},
		"AccountSid": {account}, "From": {fmt.Sprintf("+1555010%04d", d.seq%phones)}, "To": {ourNumber},
		"Body": {"Hi, where is my order? It was due yesterday. " + marker}, "NumMedia": {"0"}, "FromCountry": {"US"},
	}
	req, err := http.NewRequest(http.MethodPost, d.hookURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(twilio.SignatureHeader, twilio.Signature(authToken, d.hookURL, form))
	resp, err := d.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("webhook %d: HTTP %d", d.seq, resp.StatusCode)
	}
	d.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, r, err := d.conn.NextReader()
		if err != nil {
			b.Fatalf("waiting for message %d at the agent: %v", d.seq, err)
		}
		d.buf.Reset()
		if _, err := d.buf.ReadFrom(r); err != nil {
			b.Fatal(err)
		}
		if bytes.Contains(d.buf.Bytes(), []byte(marker)) {
			return
		}
	}
}

func (d *driver) run(b *testing.B) {
	for range phones { // assign every conversation before the timer starts
		d.send(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d.send(b)
	}
}

func newClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
}

// BenchmarkInboundPath is one inbound SMS through a real embedded node:
// a signed webhook over loopback HTTP, parsed and checked, stored durably
// (LevelDB, synced before the 200), routed and written to the agent's
// WebSocket as an "update" frame, which the agent reads. One message at a
// time: ns/op is the path's latency, allocs/op and B/op count the whole
// process (the node and the driver; BenchmarkInboundPathBaseline is the
// driver's share, measured the same way).
func BenchmarkInboundPath(b *testing.B) {
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	o := switchboard.NewOptions()
	o.Addr = "127.0.0.1:0"
	o.DataDir = b.TempDir()
	o.Node = "bench"
	o.Secret = secret
	o.StatsInterval = 0
	o.TwilioAccountSID, o.TwilioAuthToken, o.TwilioFrom, o.TwilioAPIURL = account, authToken, ourNumber, fake.URL()
	n, err := switchboard.New(o, switchboard.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			b.Errorf("node shutdown: %v", err)
		}
	}()
	base := "http://" + n.Addr().String()

	tok, err := token.Issue([]byte(secret), "bench-agent", protocol.MaxCapacity, time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/agent", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if err := conn.WriteJSON(protocol.Frame{Type: protocol.TypeAvailable, Capacity: protocol.MaxCapacity}); err != nil {
		b.Fatal(err)
	}
	d := &driver{client: newClient(), hookURL: base + "/sms/twilio", conn: conn}
	defer d.client.CloseIdleConnections()
	d.run(b)
}

// BenchmarkInboundPathBaseline is the same driver against a server that
// does the least a forwarder can: parse the form, write the body to the
// agent's WebSocket as an "update" frame, answer the same empty TwiML. No
// signature check, no store, no routing.
func BenchmarkInboundPathBaseline(b *testing.B) {
	agentConn := make(chan *websocket.Conn, 1)
	var up websocket.Upgrader
	var mu sync.Mutex // guards ws: the handlers run on the server's goroutines
	var ws *websocket.Conn
	mux := http.NewServeMux()
	mux.HandleFunc("GET /agent", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		agentConn <- c
	})
	mux.HandleFunc("POST /sms/twilio", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f := protocol.Frame{Type: protocol.TypeUpdate, Phone: r.PostForm.Get("From"), List: []protocol.Message{{
			ID: r.PostForm.Get("MessageSid"), Phone: r.PostForm.Get("From"), Direction: protocol.In,
			Text: r.PostForm.Get("Body"), Received: time.Now().UnixMilli(), Status: protocol.StatusReceived,
		}}}
		mu.Lock()
		err := ws.WriteJSON(f)
		mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/agent", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	mu.Lock()
	ws = <-agentConn
	mu.Unlock()
	defer ws.Close()
	d := &driver{client: newClient(), hookURL: base + "/sms/twilio", conn: conn}
	defer d.client.CloseIdleConnections()
	d.run(b)
}
