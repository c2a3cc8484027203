package deploy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// seen is what a fake node reports about the request nginx forwarded.
type seen struct {
	Node, Host, Proto, FwdHost, Upgrade string
}

// fakeNode is an HTTP server on loopback that answers every request with
// what it saw, and on /agent upgrades to a WebSocket that first sends what
// it saw and then echoes.
func fakeNode(t testing.TB, id string) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{Node: id, Host: r.Host, Proto: r.Header.Get("X-Forwarded-Proto"), FwdHost: r.Header.Get("X-Forwarded-Host"), Upgrade: r.Header.Get("Upgrade")}
		if r.URL.Path != "/agent" {
			io.Copy(io.Discard, r.Body)
			json.NewEncoder(w).Encode(s)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if c.WriteJSON(s) != nil {
			return
		}
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil || c.WriteMessage(typ, msg) != nil {
				return
			}
		}
	})}
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	stop = func() { srv.Close(); <-done }
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			stop()
		}
	})
	return l.Addr().String(), stop
}

// TestNginxProxy runs the shipped nginx config in front of two fake nodes
// and checks what the nodes depend on: the headers Twilio signatures are
// rebuilt from, WebSocket upgrades, least_conn placement, the body limit,
// and failed nodes being skipped and marked.
func TestNginxProxy(t *testing.T) {
	nginxBinary(t)
	a, _ := fakeNode(t, "a")
	b, stopB := fakeNode(t, "b")
	base, logs := startNginx(t, sbt.FreePort(t), []string{a, b})
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)

	get := func(t *testing.T, host, proto string) (int, seen) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/sms/twilio/status?x=1", nil)
		req.Host = host
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s seen
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, s
	}

	t.Run("forwarded headers", func(t *testing.T) {
		for _, tc := range []struct {
			name, host, proto string
			want              seen
		}{
			{"plain http: nginx's own scheme", "sms.example.test", "", seen{Host: "sms.example.test", Proto: "http", FwdHost: "sms.example.test"}},
			{"TLS terminated in front: its scheme is kept", "sms.example.test", "https", seen{Host: "sms.example.test", Proto: "https", FwdHost: "sms.example.test"}},
			{"port kept in Host (Twilio signs it)", "sms.example.test:8443", "https", seen{Host: "sms.example.test:8443", Proto: "https", FwdHost: "sms.example.test:8443"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, s := get(t, tc.host, tc.proto)
				s.Node = ""
				if code != 200 || s != tc.want {
					t.Fatalf("%d %+v, want %+v", code, s, tc.want)
				}
			})
		}
	})

	t.Run("body over 64 KiB refused at nginx", func(t *testing.T) {
		resp, err := client.Post(base+"/sms/twilio", "application/x-www-form-urlencoded", strings.NewReader("Body="+strings.Repeat("x", 70<<10)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
	})

	t.Run("websockets upgrade, echo, and spread with least_conn", func(t *testing.T) {
		ws := strings.Replace(base, "http://", "ws://", 1) + "/agent"
		nodes := map[string]bool{}
		for i := 0; i < 2; i++ {
			c, _, err := websocket.DefaultDialer.Dial(ws, nil)
			if err != nil {
				t.Fatalf("dial through nginx: %v", err)
			}
			defer c.Close()
			var s seen
			if err := c.ReadJSON(&s); err != nil {
				t.Fatal(err)
			}
			if s.Upgrade != "websocket" {
				t.Fatalf("node saw Upgrade %q", s.Upgrade)
			}
			nodes[s.Node] = true
			msg := fmt.Sprintf(`{"type":"available","n":%d}`, i)
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
				t.Fatalf("echo %q %v", got, err)
			}
		}
		// The first connection stays open on one node, so least_conn sends
		// the second to the other.
		if len(nodes) != 2 {
			t.Fatalf("two open WebSockets landed on %v, want both nodes", nodes)
		}
	})

	t.Run("a dead node is skipped and marked failed", func(t *testing.T) {
		stopB()
		for i := 0; i < 10; i++ {
			if code, s := get(t, "sms.example.test", ""); code != 200 || s.Node != "a" {
				t.Fatalf("request %d: %d from %q, want 200 from a", i, code, s.Node)
			}
		}
		sbt.WaitFor(t, wait, "nginx marking the dead node failed (max_fails)", func() bool {
			return strings.Contains(logs.String(), "upstream server temporarily disabled")
		})
	})
}

// TestNginxDefaultServer: beside another site on the same port, included
// first (as a distribution's conf.d or sites-enabled may be), requests for
// any host still reach the nodes: the shipped site is default_server.
// Without it nginx gives requests whose Host names no site to the first
// server it read.
func TestNginxDefaultServer(t *testing.T) {
	nginxBinary(t)
	a, _ := fakeNode(t, "a")
	b, _ := fakeNode(t, "b")
	other := "server {\n    listen LISTEN;\n    server_name other.example;\n    return 418;\n}\n"
	base, _ := startNginx(t, sbt.FreePort(t), []string{a, b}, other)
	for host, want := range map[string]int{"sms.example.com": http.StatusOK, "203.0.113.7": http.StatusOK, "other.example": http.StatusTeapot} {
		req, err := http.NewRequest(http.MethodGet, base+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
