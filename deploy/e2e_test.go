package deploy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard"
	"github.com/switchboard/switchboard/switchboard/bus/bustest"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
	"github.com/switchboard/switchboard/switchboard/token"
)

const (
	e2eSecret  = "deploy-e2e-secret"
	e2eAccount = "AC0123456789abcdef0123456789abcdef"
	e2eToken   = "fedcba9876543210fedcba9876543210"
	e2eFrom    = "+15550001111"
	// publicHook is the URL Twilio is configured with: TLS ends in front
	// of nginx, which gets X-Forwarded-Proto: https and this Host.
	publicHost = "sms.example.test"
	publicHook = "https://" + publicHost + "/sms/twilio"
)

// node is a switchboard binary running on loopback.
type node struct {
	name string
	base string
	logs *syncBuffer
}

// startNode runs the real binary with the given RabbitMQ URL and exchange
// and returns a function that waits until it is ready (so several nodes
// start at once). No -public-url: the node must rebuild Twilio's URL from
// the headers nginx forwards.
func startNode(t *testing.T, name, amqpURL, exchange, twilioURL string) (*node, func()) {
	t.Helper()
	port := sbt.FreePort(t)
	n := &node{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &syncBuffer{}}
	cmd := exec.Command(binary(t))
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("SWITCHBOARD_ADDR=127.0.0.1:%d", port),
		"PORT=",
		"SWITCHBOARD_DATA="+t.TempDir(),
		"SWITCHBOARD_SECRET="+e2eSecret,
		"SWITCHBOARD_NODE="+name,
		"SWITCHBOARD_PUBLIC_URL=",
		"SWITCHBOARD_STATS_INTERVAL=0",
		"SWITCHBOARD_GRACE=2s",
		"SWITCHBOARD_AMQP_URL="+amqpURL,
		"CLOUDAMQP_URL=",
		"SWITCHBOARD_AMQP_EXCHANGE="+exchange,
		"TWILIO_ACCOUNT_SID="+e2eAccount,
		"TWILIO_AUTH_TOKEN="+e2eToken,
		"TWILIO_FROM="+e2eFrom,
		"TWILIO_API_URL="+twilioURL,
	)
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(wait):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("node %s output:\n%s", name, n.logs.String())
		}
	})
	return n, func() {
		t.Helper()
		sbt.WaitFor(t, wait, "node "+name+" ready", func() bool {
			select {
			case err := <-done:
				done <- err
				t.Fatalf("node %s exited: %v\n%s", name, err, n.logs.String())
			default:
			}
			resp, err := http.Get(n.base + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
}

// webhook posts an inbound SMS to nginx as Twilio would reach it through
// a TLS terminator: Host and X-Forwarded-Proto of the public URL, signed
// for signedFor.
func webhook(t *testing.T, nginx, signedFor string, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, nginx+"/sms/twilio", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = publicHost
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if signedFor != "" {
		req.Header.Set(twilio.SignatureHeader, twilio.Signature(e2eToken, signedFor, form))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func agentThrough(t *testing.T, nginx, name string, capacity int) *sbt.Agent {
	t.Helper()
	tok, err := token.Issue([]byte(e2eSecret), name, capacity, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a := sbt.DialAgent(t, strings.Replace(nginx, "http://", "ws://", 1)+"/agent", tok)
	a.Expect(protocol.TypeAlert, nil, wait)
	a.Send(protocol.Frame{Type: protocol.TypeAvailable, Capacity: capacity})
	return a
}

// TestTwoNodesBehindNginx is the VPS deployment end to end: two real nodes
// on a real RabbitMQ (an exchange of their own), the shipped nginx config in
// front on loopback, Twilio webhooks signed for the public https URL, agents
// connected through nginx, replies sent to a fake Twilio exactly once.
func TestTwoNodesBehindNginx(t *testing.T) {
	nginxBinary(t)
	amqpURL := bustest.AMQPURL(t)
	exchange := bustest.UniqueName(t, "sbdeploy")
	// The durable names a node declares for its exchange; private queues
	// are exclusive and go with the connections.
	bustest.DeleteOnCleanup(t, amqpURL, func() ([]string, []string) { return switchboard.BrokerNames(exchange) })
	fake := twiliotest.NewServer(e2eAccount, e2eToken)
	t.Cleanup(fake.Close)

	na, readyA := startNode(t, "e2e-a", amqpURL, exchange, fake.URL())
	nb, readyB := startNode(t, "e2e-b", amqpURL, exchange, fake.URL())
	readyA()
	readyB()
	lb, _ := startNginx(t, sbt.FreePort(t), []string{strings.TrimPrefix(na.base, "http://"), strings.TrimPrefix(nb.base, "http://")})

	if code := sbt.GetJSON(t, lb+"/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("readyz through nginx: %d", code)
	}

	// Signatures: only the public https URL validates; the node rebuilds
	// it from X-Forwarded-Proto and Host, which nginx passes on.
	const c1, c2 = "+15557770001", "+15557770002"
	for _, tc := range []struct {
		name, signedFor string
		want            int
	}{
		{"unsigned", "", http.StatusForbidden},
		{"signed for the plain http URL", "http://" + publicHost + "/sms/twilio", http.StatusForbidden},
		{"signed for nginx's loopback address", lb + "/sms/twilio", http.StatusForbidden},
	} {
		if code, body := webhook(t, lb, tc.signedFor, sbt.InboundForm("SMbad"+strings.ReplaceAll(tc.name, " ", ""), c1, e2eFrom, "forged")); code != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, code, body, tc.want)
		}
	}

	// Two agents through nginx: least_conn puts them on different nodes
	// (each open WebSocket counts as a connection).
	alice := agentThrough(t, lb, "alice", 1)
	bob := agentThrough(t, lb, "bob", 1)

	// Two customers write; nginx spreads the webhooks over both nodes.
	// Each webhook is answered 200 with empty TwiML once it is durable.
	for i, phone := range []string{c1, c2} {
		code, body := webhook(t, lb, publicHook, sbt.InboundForm(fmt.Sprintf("SMdeploy%02d", i), phone, e2eFrom, "hello from "+phone))
		if code != http.StatusOK || !strings.Contains(body, "<Response></Response>") {
			t.Fatalf("webhook for %s through nginx: %d %q", phone, code, body)
		}
	}
	// Cross-node routing: each agent gets one of the two conversations,
	// whichever node its WebSocket and the webhook landed on.
	fa := alice.Expect(protocol.TypeAssigned, nil, wait)
	fb := bob.Expect(protocol.TypeAssigned, nil, wait)
	if fa.Phone == fb.Phone || (fa.Phone != c1 && fa.Phone != c2) || (fb.Phone != c1 && fb.Phone != c2) {
		t.Fatalf("assigned alice %s, bob %s; want %s and %s, one each", fa.Phone, fb.Phone, c1, c2)
	}

	// Each agent replies; each reply reaches Twilio exactly once.
	replies := map[string]string{}
	for _, x := range []struct {
		a     *sbt.Agent
		phone string
	}{{alice, fa.Phone}, {bob, fb.Phone}} {
		text := "answer for " + x.phone
		replies[x.phone] = text
		x.a.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: x.phone, Message: text, Ref: "r-" + x.phone})
		x.a.Expect(protocol.TypeAck, nil, wait)
	}
	fake.WaitAccepted(t, 2, wait)
	// No reply may follow later from the other node: watch for a while.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if n := len(fake.Sent()); n != 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sent := fake.Sent()
	if len(sent) != 2 {
		t.Fatalf("Twilio got %d send requests, want 2: %+v", len(sent), sent)
	}
	for _, m := range sent {
		if m.From != e2eFrom || replies[m.To] != m.Body || !m.BasicAuthOK {
			t.Errorf("sent %+v, want From %s and the agent's text %q", m, e2eFrom, replies[m.To])
		}
		delete(replies, m.To)
	}
	if len(replies) != 0 {
		t.Errorf("replies never sent: %v", replies)
	}
}
