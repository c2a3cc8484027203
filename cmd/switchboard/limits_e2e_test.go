package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
	"github.com/switchboard/switchboard/switchboard/token"
)

func issue(t *testing.T, agent string, ttl time.Duration) string {
	t.Helper()
	tok, err := token.Issue([]byte(secret), agent, 2, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func closeError(t *testing.T, err error) *websocket.CloseError {
	t.Helper()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("connection ended with %v, want a close frame", err)
	}
	return ce
}

// A token that expires during a session ends it with a reason; a new SMS
// is not offered to it, and a client with a fresh token gets the
// conversation back (within the grace period).
func TestTokenExpiresDuringSession(t *testing.T) {
	fake := twiliotestServer(t)
	p := start(t, sbt.FreePort(t), t.TempDir(), fake.URL(), "SWITCHBOARD_GRACE=20s")
	const c1 = "+15554440001"
	alice := sbt.DialAgent(t, p.ws, issue(t, "alice", 2*time.Second))
	alice.Expect(protocol.TypeAlert, nil, wait)
	alice.Send(protocol.Frame{Type: protocol.TypeAvailable})
	p.sms("SMte1", c1, "hello")
	alice.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	if f := alice.Expect(protocol.TypeError, nil, wait); f.Code != protocol.CodeTokenExpired {
		t.Fatalf("error %+v, want token_expired", f)
	}
	ce := closeError(t, alice.Closed(wait))
	if ce.Code != websocket.ClosePolicyViolation || ce.Text != "token expired: reconnect with a fresh token" {
		t.Fatalf("closed with %d %q", ce.Code, ce.Text)
	}
	p.sms("SMte2", c1, "anyone?")
	again := sbt.DialAgent(t, p.ws, issue(t, "alice", time.Hour))
	f := again.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	if len(f.List) != 2 {
		t.Fatalf("conversation back with %d messages, want 2", len(f.List))
	}
	again.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "here", Ref: "r1"})
	again.Expect(protocol.TypeAck, nil, wait)
}

// An expired token cannot send a reply that is then accepted: covered by
// admit's check before every frame; here, the reply sent right at expiry.
func TestReplyAfterExpiryRefused(t *testing.T) {
	fake := twiliotestServer(t)
	p := start(t, sbt.FreePort(t), t.TempDir(), fake.URL())
	const c1 = "+15554440002"
	alice := sbt.DialAgent(t, p.ws, issue(t, "alice", 2*time.Second))
	alice.Expect(protocol.TypeAlert, nil, wait)
	alice.Send(protocol.Frame{Type: protocol.TypeAvailable})
	p.sms("SMte3", c1, "hello")
	alice.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	alice.Expect(protocol.TypeError, func(f protocol.Frame) bool { return f.Code == protocol.CodeTokenExpired }, wait)
	// The close frame may not have been read yet: a reply now is not taken.
	alice.Conn.WriteJSON(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "late", Ref: "late"})
	alice.Closed(wait)
	for _, m := range conversationMessages(t, p, c1) {
		if m.Direction == protocol.Out {
			t.Fatalf("a reply after expiry was stored: %+v", m)
		}
	}
}

// flooder sends history requests as fast as it can until stop, reading
// (and counting) what comes back; a disconnected flooder reconnects.
type flooder struct {
	sent, limited, closes int
	refused               int      // reconnects answered 429 (the flood penalty)
	reasons               []string // close reasons other than the rate limit's
}

func flood(t *testing.T, wsURL, tok string, stop <-chan struct{}) *flooder {
	fl := &flooder{}
	frame := []byte(`{"type":"history","phone":"+15559999999"}`)
	for {
		select {
		case <-stop:
			return fl
		default:
		}
		h := http.Header{"Authorization": {"Bearer " + tok}}
		conn, resp, err := websocket.DefaultDialer.Dial(wsURL, h)
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			// Kept out after a flood: the answer says for how long.
			if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 5 {
				t.Errorf("429 with Retry-After %q, want 1 to 5 s", resp.Header.Get("Retry-After"))
				return fl
			}
			fl.refused++
			select {
			case <-stop:
				return fl
			case <-time.After(20 * time.Millisecond): // a client retrying, not a timing assertion
			}
			continue
		}
		if err != nil {
			t.Errorf("flooder dial: %v", err)
			return fl
		}
		var mu sync.Mutex
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				_, data, err := conn.ReadMessage()
				if err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						mu.Lock()
						fl.closes++
						if ce.Text != "rate limit exceeded" {
							fl.reasons = append(fl.reasons, ce.Text)
						}
						mu.Unlock()
					}
					return
				}
				if f, err := protocol.DecodeEvent(data); err == nil && f.Code == protocol.CodeRateLimited {
					mu.Lock()
					fl.limited++
					mu.Unlock()
				}
			}
		}()
	send:
		for {
			select {
			case <-stop:
				break send
			case <-done:
				break send
			default:
			}
			if conn.WriteMessage(websocket.TextMessage, frame) != nil {
				break
			}
			fl.sent++
		}
		conn.Close()
		<-done
	}
}

// roundTrips measures n history round trips of an agent, paced under the
// test's rate limit of 50 frames a second.
func roundTrips(t *testing.T, a *sbt.Agent, phone string, n int) []time.Duration {
	var d []time.Duration
	for range n {
		time.Sleep(25 * time.Millisecond) // pacing, not a timing assertion
		start := time.Now()
		a.Send(protocol.Frame{Type: protocol.TypeHistory, Phone: phone, Limit: 5})
		a.Expect(protocol.TypeHistory, nil, wait)
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	return d
}

func p99(d []time.Duration) time.Duration { return d[len(d)*99/100] }

// One agent connection flooding the node is limited (error rate_limited),
// then disconnected, and its agent's reconnects are refused (429) for a
// while; another agent keeps working. Its p99 round trip with
// and without the flood is reported, not asserted (shared machine).
func TestAgentFloodIsLimited(t *testing.T) {
	fake := twiliotestServer(t)
	p := start(t, sbt.FreePort(t), t.TempDir(), fake.URL(), "SWITCHBOARD_AGENT_RATE=50", "SWITCHBOARD_AGENT_BURST=50")
	const c1 = "+15554440003"
	bob := p.agent("bob", 1)
	p.sms("SMfl1", c1, "hello")
	bob.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	quiet := roundTrips(t, bob, c1, 100)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]*flooder, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = flood(t, p.ws, issue(t, fmt.Sprintf("mallory%d", i), time.Hour), stop)
		}()
	}
	time.Sleep(200 * time.Millisecond) // let the flood start; not a timing assertion
	loud := roundTrips(t, bob, c1, 100)
	close(stop)
	wg.Wait()
	sent, limited, closes, refused := 0, 0, 0, 0
	var reasons []string
	for _, fl := range results {
		sent, limited, closes, refused = sent+fl.sent, limited+fl.limited, closes+fl.closes, refused+fl.refused
		reasons = append(reasons, fl.reasons...)
	}
	// The node drains a flooder's frames until its close frame comes back
	// (the close handshake), so no TCP reset discards the reason: every
	// disconnect says why.
	if len(reasons) > 0 {
		t.Errorf("%d of %d disconnects did not say \"rate limit exceeded\": %q", len(reasons), closes, reasons)
	}
	if limited == 0 || closes == 0 {
		t.Fatalf("flood of %d frames: %d rate_limited errors, %d disconnects; want both", sent, limited, closes)
	}
	// A flooder closed for it is kept out for 5 s (about twice this
	// flood): its reconnects are refused.
	if closes < len(results) || refused == 0 {
		t.Fatalf("%d disconnects and %d reconnects refused for %d flooders; want each disconnected, then refusals", closes, refused, len(results))
	}
	// The agent's other sessions stay: bob was never limited, and a
	// flooder's penalty is its own.
	bob.Send(protocol.Frame{Type: protocol.TypeHistory, Phone: c1, Limit: 5})
	bob.Expect(protocol.TypeHistory, nil, wait)
	t.Logf("flood: 4 connections sent %d frames, %d answered rate_limited, %d disconnects, %d reconnects refused", sent, limited, closes, refused)
	t.Logf("other agent's history round trip: p99 %v quiet, %v during the flood (ratio %.1f); p50 %v / %v",
		p99(quiet), p99(loud), float64(p99(loud))/float64(p99(quiet)), quiet[len(quiet)/2], loud[len(loud)/2])
}

// navBatch posts n events (well under the 1 MiB body limit) and returns the
// status and body of the answer.
func navBatch(t *testing.T, p *proc, n int) (int, string) {
	t.Helper()
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"user":"u%d","product":"3","type":"PRODUCT"}`, i%50)
	}
	b.WriteByte(']')
	if b.Len() >= 1<<20 {
		t.Fatalf("batch of %d is %d bytes, not under the body limit", n, b.Len())
	}
	resp, err := http.Post(p.base+"/nav", "application/json", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// POST /nav's event count has one setting, and its 413 names it.
func TestNavEventLimitIsASetting(t *testing.T) {
	fake := twiliotestServer(t)
	p := start(t, sbt.FreePort(t), t.TempDir(), fake.URL())
	code, body := navBatch(t, p, 10001)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "-nav-max-events") || !strings.Contains(body, "SWITCHBOARD_NAV_MAX_EVENTS") {
		t.Fatalf("10001 events: %d %q, want 413 naming -nav-max-events", code, body)
	}
	p.kill()
	q := start(t, sbt.FreePort(t), t.TempDir(), fake.URL(), "SWITCHBOARD_NAV_MAX_EVENTS=20000")
	if code, body := navBatch(t, q, 10001); code != http.StatusAccepted || !strings.Contains(body, `"accepted":10001`) {
		t.Fatalf("10001 events with -nav-max-events 20000: %d %q", code, body)
	}
}
