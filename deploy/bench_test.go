package deploy_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// BenchmarkNginxOverhead measures what the shipped nginx config adds to a
// request and to a WebSocket round trip, against the same fake node reached
// directly (the baseline, measured in the same run).
//
//	go test -run '^$' -bench NginxOverhead -benchtime 1s ./deploy/
func BenchmarkNginxOverhead(b *testing.B) {
	nginxBinary(b)
	node, _ := fakeNode(b, "a")
	lb, _ := startNginx(b, sbt.FreePort(b), []string{node, node})
	targets := []struct{ name, base string }{{"direct", "http://" + node}, {"nginx", lb}}

	for _, tg := range targets {
		b.Run("GET/"+tg.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			defer client.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, tg.base+"/readyz", nil)
			req.Host = "sms.example.test"
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	for _, tg := range targets {
		b.Run("WebSocketRoundTrip/"+tg.name, func(b *testing.B) {
			c, _, err := websocket.DefaultDialer.Dial(strings.Replace(tg.base, "http://", "ws://", 1)+"/agent", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if _, _, err := c.ReadMessage(); err != nil { // the greeting
				b.Fatal(err)
			}
			msg := []byte(`{"type":"response","phone":"+15551234567","message":"Your order ships today.","ref":"r-1"}`)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
