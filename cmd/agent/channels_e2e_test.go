package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	"github.com/switchboard/switchboard/switchboard/switchboardtest"
	"github.com/switchboard/switchboard/switchboard/token"
)

// stack is a real node and the real agent binary in tmux (issue 19's TUI
// parts end to end).
type stack struct {
	t      *testing.T
	base   string
	tmux   string
	sock   string
	agent  string // the agent command line, without -token
	secret string
	auth   string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("end-to-end test needs tmux, which is not installed")
	}
	dir := t.TempDir()
	nodeBin, agentBin := binaries(t)
	const sid, auth, secret = "AC00000000000000000000000000000000", "e2eauthtoken0123456789abcdef0123", "e2e-secret"
	tw := twiliotest.NewServer(sid, auth)
	t.Cleanup(tw.Close)
	port := switchboardtest.FreePort(t)
	s := &stack{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), tmux: tmux, sock: "sb-ch-" + fmt.Sprint(os.Getpid()), secret: secret, auth: auth}
	startNode(t, nodeBin, append(slicesDeleteEnv(os.Environ(), "PORT", "SWITCHBOARD_AMQP_URL", "CLOUDAMQP_URL"),
		"SWITCHBOARD_SECRET="+secret, "SWITCHBOARD_DATA="+filepath.Join(dir, "data"),
		fmt.Sprintf("SWITCHBOARD_ADDR=127.0.0.1:%d", port), "SWITCHBOARD_PUBLIC_URL="+s.base, "SWITCHBOARD_NODE=e2e",
		"SWITCHBOARD_GRACE=30s", "TWILIO_ACCOUNT_SID="+sid, "TWILIO_AUTH_TOKEN="+auth, "TWILIO_FROM=+15550001111",
		"TWILIO_API_URL="+tw.URL()), s.base)
	t.Cleanup(func() { _ = exec.Command(tmux, "-L", s.sock, "kill-server").Run() })
	s.agent = fmt.Sprintf("%s -url ws://127.0.0.1:%d/agent -ascii -log %s", agentBin, port, filepath.Join(dir, "agent.log"))
	return s
}

func (s *stack) tm(args ...string) string {
	s.t.Helper()
	b, err := exec.Command(s.tmux, append([]string{"-L", s.sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, b)
	}
	return string(b)
}

// run starts the agent in tmux session name with a token valid for ttl.
func (s *stack) run(name string, ttl time.Duration) {
	s.t.Helper()
	tok, err := token.Issue([]byte(s.secret), "alice", 2, ttl, time.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	s.tm("new-session", "-d", "-s", name, "-x", "120", "-y", "30", s.agent+" -token "+tok)
}

func (s *stack) waitScreen(name, what string, cond func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		screen := s.tm("capture-pane", "-p", "-t", name)
		if cond(screen) {
			return screen
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s; screen:\n%s", what, screen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *stack) post(form map[string]string) {
	s.t.Helper()
	f := switchboardtest.InboundForm(form["MessageSid"], form["From"], form["To"], form["Body"])
	for k, v := range form {
		f.Set(k, v)
	}
	if code, body := switchboardtest.PostForm(s.t, s.base, "", "/sms/twilio", s.auth, f); code != 200 {
		s.t.Fatalf("webhook %s: %d %s", form["MessageSid"], code, body)
	}
}

// A WhatsApp picture shows as a media line with its type and URL under a
// WhatsApp mark; the customer's STOP marks the conversation opted out.
func TestMediaWhatsAppAndOptOutOnScreen(t *testing.T) {
	s := newStack(t)
	s.run("ch", time.Hour)
	s.waitScreen("ch", "connected", func(v string) bool { return strings.Contains(v, "* connected") })
	const url0 = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME0"
	s.post(map[string]string{"MessageSid": "MMch1", "From": "whatsapp:+15557654321", "To": "whatsapp:+15550001111", "Body": "",
		"NumMedia": "1", "MediaUrl0": url0, "MediaContentType0": "image/jpeg"})
	v := s.waitScreen("ch", "the picture", func(v string) bool {
		return strings.Contains(v, "[media] image/jpeg "+url0[:40]) && strings.Contains(v, "+15557654321 - WhatsApp")
	})
	t.Logf("screen with a WhatsApp picture:\n%s", v)
	s.post(map[string]string{"MessageSid": "SMch2", "From": "whatsapp:+15557654321", "To": "whatsapp:+15550001111", "Body": "Stop"})
	v = s.waitScreen("ch", "the opt-out", func(v string) bool { return strings.Contains(v, "opted out (STOP): replies are refused") })
	t.Logf("screen after STOP:\n%s", v)
}

// The node closes a session whose token expired; the agent says so.
func TestTokenExpiryOnScreen(t *testing.T) {
	s := newStack(t)
	s.run("exp", 2*time.Second)
	s.waitScreen("exp", "connected", func(v string) bool { return strings.Contains(v, "* connected") })
	v := s.waitScreen("exp", "the expiry", func(v string) bool { return strings.Contains(v, "token expired") })
	t.Logf("screen after the token expired:\n%s", v)
}
