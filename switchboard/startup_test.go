package switchboard

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/store"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// proxy forwards TCP connections from a listener on addr to target, once
// it is opened: until then connections to addr are refused, as to a
// broker that is down.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

// reserveAddr returns a loopback address nothing listens on.
func reserveAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func (p *proxy) open(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("open the proxy on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *proxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
	}
	for _, c := range p.conns {
		c.Close()
	}
}

// TestStartWithoutTheBroker: a node started with -amqp while RabbitMQ
// cannot be reached does not exit. It answers /healthz, says on /readyz
// why it is not ready, and takes webhooks into its journal (answered 200:
// durable). Once the broker is reachable it connects, catches up, becomes
// ready, and the message reaches an agent.
func TestStartWithoutTheBroker(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: reserveAddr(t), target: u.Host}
	t.Cleanup(p.close) // after the node's shutdown
	down := *u
	down.Host = p.addr
	h := startNode(t, clusterNode(down.String(), ex, "n1"))

	if code := sbt.GetJSON(t, h.base+"/healthz", "", nil); code != http.StatusOK {
		t.Fatalf("healthz = %d while the broker is away, want 200", code)
	}
	resp, err := http.Get(h.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "not connected") {
		t.Fatalf("readyz = %d %q, want 503 saying the node is not connected", resp.StatusCode, body)
	}

	const phone = "+15556667001"
	h.sms("SMbrokerdown1", phone, "sent while the broker was down")
	var journaled []string
	h.node.store.Journal(func(e store.JournalEntry) error {
		journaled = append(journaled, e.Key)
		return nil
	})
	if len(journaled) != 1 || journaled[0] != keyIn(phone) {
		t.Fatalf("journal = %v, want the webhook's message", journaled)
	}

	p.open(t)
	sbt.WaitFor(t, 30*time.Second, "ready once the broker is reachable", func() bool { return h.node.Ready() == nil })
	alice := h.agent("alice", 2)
	f := alice.Expect(protocol.TypeAssigned, nil, 30*time.Second)
	if f.Phone != phone || len(f.List) != 1 || f.List[0].Text != "sent while the broker was down" {
		t.Fatalf("assigned %+v, want the message accepted while the broker was down", f)
	}
}
