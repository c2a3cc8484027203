package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	"github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// TestEndToEnd runs the real agent binary in tmux against a real switchboard
// node and a fake Twilio, all on 127.0.0.1: a signed webhook appears on the
// agent's screen with a relative time and a sentiment mark, a reply typed in
// the terminal (in one chunk, made of key names) reaches the fake Twilio
// whole, the screen shows it as sent, the stats pane names what the
// customer viewed, and a customer who waits shows in the header.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("end-to-end test needs tmux, which is not installed")
	}
	dir := t.TempDir()
	nodeBin, agentBin := binaries(t)

	const sid, authToken, secret = "AC00000000000000000000000000000000", "e2eauthtoken0123456789abcdef0123", "e2e-secret"
	tw := twiliotest.NewServer(sid, authToken)
	t.Cleanup(tw.Close)

	port := switchboardtest.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := append(os.Environ(),
		"SWITCHBOARD_SECRET="+secret,
		"SWITCHBOARD_DATA="+filepath.Join(dir, "data"),
		"SWITCHBOARD_ADDR="+fmt.Sprintf("127.0.0.1:%d", port),
		"SWITCHBOARD_PUBLIC_URL="+base,
		"SWITCHBOARD_NODE=e2e",
		"TWILIO_ACCOUNT_SID="+sid, "TWILIO_AUTH_TOKEN="+authToken, "TWILIO_FROM=+15550001111",
		"TWILIO_API_URL="+tw.URL(),
	)
	env = slicesDeleteEnv(env, "PORT", "SWITCHBOARD_AMQP_URL", "CLOUDAMQP_URL")

	startNode(t, nodeBin, env, base, "-addr", fmt.Sprintf("127.0.0.1:%d", port))
	tokCmd := exec.Command(nodeBin, "token", "alice", "-capacity", "1")
	tokCmd.Env = env
	out, err := tokCmd.Output()
	if err != nil {
		t.Fatalf("switchboard token: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	tok := strings.TrimSpace(lines[len(lines)-1])

	sock := "sb-e2e-" + fmt.Sprint(os.Getpid())
	tm := func(args ...string) string {
		t.Helper()
		b, err := exec.Command(tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	agentCmd := fmt.Sprintf("%s -url ws://127.0.0.1:%d/agent -token %s -ascii -log %s",
		agentBin, port, tok, filepath.Join(dir, "agent.log"))
	tm("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "30", agentCmd)
	t.Cleanup(func() {
		_ = exec.Command(tmux, "-L", sock, "kill-server").Run()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Logf("agent log:\n%s", b)
		}
	})
	screen := func() string { return tm("capture-pane", "-p", "-t", "e2e") }
	waitScreen := func(what string, cond func(string) bool) string {
		t.Helper()
		var s string
		deadline := time.Now().Add(10 * time.Second)
		for {
			s = screen()
			if cond(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitScreen("connected", func(s string) bool { return strings.Contains(s, "* connected") })

	const customer = "+15557654321"
	status, body := switchboardtest.PostForm(t, base, "", "/sms/twilio", authToken,
		switchboardtest.InboundForm("SM"+strings.Repeat("a", 32), customer, "+15550001111", "Thank you so much, the camcorder is amazing!"))
	if status != 200 {
		t.Fatalf("webhook answered %d %s", status, body)
	}
	s := waitScreen("the inbound message", func(s string) bool {
		return strings.Contains(s, "the camcorder is amazing!") && strings.Contains(s, "< customer - ;) - just now")
	})
	t.Logf("screen with the inbound message:\n%s", s)

	// The reply is typed in one chunk (tmux writes it to the terminal at
	// once, as a laggy SSH session or an IME would) and is made of key
	// names: every word must arrive, and only the Enter key sends.
	const reply = "Glad you like it! We are on it right now: turn left then up, press enter or tab, " +
		"home end pgup pgdown esc f1 ctrl+c ctrl+x ctrl+r ctrl+t alt+enter shift+tab ? entertain tablet enter tab"
	tm("send-keys", "-t", "e2e", "-l", reply)
	s = waitScreen("the reply in the composer", func(s string) bool { return strings.Contains(s, "tablet") })
	if got := tw.Sent(); len(got) != 0 || strings.Contains(s, "> you") {
		t.Fatalf("a reply went out before Enter: fake Twilio got %+v; screen:\n%s", got, s)
	}
	tm("send-keys", "-t", "e2e", "Enter")
	sent := tw.WaitSent(t, 1, 10*time.Second)
	if sent[0].To != customer || sent[0].Body != reply {
		t.Fatalf("fake Twilio got %+v, want the whole reply %q", sent[0], reply)
	}
	// Twilio reports "sent" with a status callback. The callback is posted
	// (again) until the screen shows it: the node may record the message's
	// SID a moment after the fake accepted it, and answers an early
	// callback for an unknown SID without applying it.
	last := time.Time{}
	s = waitScreen("the reply as sent", func(s string) bool {
		if strings.Contains(s, "> you - sent") || strings.Contains(s, "> you - delivered") {
			return true
		}
		if time.Since(last) > 200*time.Millisecond && sent[0].StatusCallback != "" {
			last = time.Now()
			_ = tw.SendStatus(sent[0].StatusCallback, sent[0].Sid, "sent")
		}
		return false
	})
	t.Logf("screen after the reply:\n%s", s)

	// Ctrl+F searches the agent's conversations through the node's index.
	tm("send-keys", "-t", "e2e", "C-f")
	waitScreen("the search pane", func(s string) bool { return strings.Contains(s, "Search your conversations:") })
	tm("send-keys", "-t", "e2e", "-l", "Camcorder")
	tm("send-keys", "-t", "e2e", "Enter")
	s = waitScreen("the search result", func(s string) bool {
		return strings.Contains(s, "1 result for Camcorder") && strings.Contains(s, customer+" < just now - Thank you so much, the camcorder")
	})
	t.Logf("screen with a search result:\n%s", s)
	tm("send-keys", "-t", "e2e", "Escape")
	waitScreen("the timeline again", func(s string) bool { return !strings.Contains(s, "Search your conversations:") })

	// The shop reports what the customer looked at: the node pushes the
	// customer's stats to this agent and the top list to everyone; the
	// pane names the products by their catalog titles.
	nav := `[{"user":"u-e2e","product":"3","type":"PRODUCT","phone":"` + customer + `"},` +
		`{"user":"u-e2e","product":"4","type":"PRODUCT","phone":"` + customer + `"}]`
	resp, err := http.Post(base+"/nav", "application/json", strings.NewReader(nav))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /nav answered %s", resp.Status)
	}
	s = waitScreen("the customer's browsing in the stats pane", func(s string) bool {
		return strings.Contains(s, customer+" viewed") && strings.Contains(s, "  Full HD camcorder") &&
			strings.Contains(s, "  Waterproof HD camcorder") && strings.Contains(s, "Top products") && strings.Contains(s, " 1. ")
	})
	t.Logf("screen with navigation stats:\n%s", s)

	// alice has room for one conversation: a second customer waits, and
	// the node's queue frame puts that in her header.
	status, body = switchboardtest.PostForm(t, base, "", "/sms/twilio", authToken,
		switchboardtest.InboundForm("SM"+strings.Repeat("b", 32), "+15557654322", "+15550001111", "Hello? Is anyone there?"))
	if status != 200 {
		t.Fatalf("webhook answered %d %s", status, body)
	}
	s = waitScreen("the waiting customer in the header", func(s string) bool { return strings.Contains(s, " - 1 waiting, longest ") })
	t.Logf("screen with a customer waiting (README capture):\n%s", s)

	tm("send-keys", "-t", "e2e", "C-c")
	switchboardtest.WaitFor(t, 5*time.Second, "agent exit", func() bool {
		return exec.Command(tmux, "-L", sock, "has-session", "-t", "e2e").Run() != nil
	})
}

func slicesDeleteEnv(env []string, keys ...string) []string {
	out := env[:0]
	for _, kv := range env {
		drop := false
		for _, k := range keys {
			if strings.HasPrefix(kv, k+"=") {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// startNode runs the node binary with env and args, waits until base
// answers /readyz with 200, and stops it when the test ends (SIGTERM, then
// a kill after 5 s), printing its output when the test failed.
func startNode(t *testing.T, bin string, env []string, base string, args ...string) *switchboardtest.SyncBuffer {
	t.Helper()
	node := exec.Command(bin, args...)
	node.Env = env
	var out switchboardtest.SyncBuffer
	node.Stdout, node.Stderr = &out, &out
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = node.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- node.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = node.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("node output:\n%s", out.String())
		}
	})
	switchboardtest.WaitFor(t, 10*time.Second, "node ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return &out
}
