package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	"github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// tmuxRun is a real node with an admin token and the real agent binary in
// tmux, both on 127.0.0.1, with a fake Twilio.
type tmuxRun struct {
	t      *testing.T
	base   string
	admin  string
	twilio *twiliotest.Server
	tmux   func(args ...string) string
}

// startTmuxRun builds and starts the node and the agent (alice, capacity
// 2, -ascii) in a tmux session named by the test's pid; skipped without
// tmux or in -short mode.
func startTmuxRun(t *testing.T) *tmuxRun {
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
	const sid, authToken, secret, admin = "AC00000000000000000000000000000000", "e2eauthtoken0123456789abcdef0123", "e2e-secret", "e2e-admin"
	r := &tmuxRun{t: t, admin: admin, twilio: twiliotest.NewServer(sid, authToken)}
	t.Cleanup(r.twilio.Close)
	port := switchboardtest.FreePort(t)
	r.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	env := slicesDeleteEnv(append(os.Environ(),
		"SWITCHBOARD_SECRET="+secret, "SWITCHBOARD_ADMIN_TOKEN="+admin,
		"SWITCHBOARD_DATA="+filepath.Join(dir, "data"), fmt.Sprintf("SWITCHBOARD_ADDR=127.0.0.1:%d", port),
		"SWITCHBOARD_PUBLIC_URL="+r.base, "SWITCHBOARD_NODE=e2e",
		"TWILIO_ACCOUNT_SID="+sid, "TWILIO_AUTH_TOKEN="+authToken, "TWILIO_FROM=+15550001111", "TWILIO_API_URL="+r.twilio.URL(),
	), "PORT", "SWITCHBOARD_AMQP_URL", "CLOUDAMQP_URL")
	startNode(t, nodeBin, env, r.base)
	tokCmd := exec.Command(nodeBin, "token", "alice", "-capacity", "2")
	tokCmd.Env = env
	out, err := tokCmd.Output()
	if err != nil {
		t.Fatalf("switchboard token: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	tok := strings.TrimSpace(lines[len(lines)-1])
	sock := fmt.Sprintf("sb-desk-%d", os.Getpid())
	r.tmux = func(args ...string) string {
		t.Helper()
		b, err := exec.Command(tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	log := filepath.Join(dir, "agent.log")
	r.tmux("new-session", "-d", "-s", "desk", "-x", "120", "-y", "30",
		fmt.Sprintf("%s -url ws://127.0.0.1:%d/agent -token %s -ascii -log %s", agentBin, port, tok, log))
	t.Cleanup(func() {
		_ = exec.Command(tmux, "-L", sock, "kill-server").Run()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("agent log:\n%s", b)
		}
	})
	r.wait("connected", func(s string) bool { return strings.Contains(s, "* connected") })
	return r
}

// wait polls the tmux screen until cond holds, for at most 10 s.
func (r *tmuxRun) wait(what string, cond func(string) bool) string {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := r.tmux("capture-pane", "-p", "-t", "desk")
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *tmuxRun) put(path, body string) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, r.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		r.t.Fatalf("PUT %s = %s", path, resp.Status)
	}
}

// TestDeskInTmux: the real agent in tmux against a real node: the
// customer shows by name, a note is stored and shown as a note and never
// reaches the fake Twilio, and /name + Tab expands a canned reply that is
// then sent.
func TestDeskInTmux(t *testing.T) {
	r := startTmuxRun(t)
	const customer = "+15557654321"
	r.put("/contacts/"+url.PathEscape(customer), `{"name":"Maya Lopez"}`)
	r.put("/canned/ship", `{"text":"Hi {first_name}, it ships today."}`)
	status, body := switchboardtest.PostForm(t, r.base, "", "/sms/twilio", "e2eauthtoken0123456789abcdef0123",
		switchboardtest.InboundForm("SM"+strings.Repeat("d", 32), customer, "+15550001111", "Where is my parcel?"))
	if status != 200 {
		t.Fatalf("webhook answered %d %s", status, body)
	}
	r.wait("the named customer", func(s string) bool {
		return strings.Contains(s, "> Maya Lopez") && strings.Contains(s, "Maya Lopez - "+customer) && strings.Contains(s, "Where is my parcel?")
	})

	r.tmux("send-keys", "-t", "desk", "C-n")
	r.wait("note mode", func(s string) bool { return strings.Contains(s, "Note on Maya Lopez") })
	r.tmux("send-keys", "-t", "desk", "-l", "courier lost it, reshipped")
	r.tmux("send-keys", "-t", "desk", "Enter")
	r.wait("the stored note", func(s string) bool {
		return strings.Contains(s, "# note by you - just now") && strings.Contains(s, ": courier lost it, reshipped")
	})
	r.tmux("send-keys", "-t", "desk", "C-n")
	r.wait("reply mode", func(s string) bool { return strings.Contains(s, "Reply to Maya Lopez") })

	r.tmux("send-keys", "-t", "desk", "-l", "/ship")
	r.tmux("send-keys", "-t", "desk", "Tab")
	r.wait("the expanded canned reply", func(s string) bool { return strings.Contains(s, "Hi Maya, it ships today.") })
	r.tmux("send-keys", "-t", "desk", "Enter")
	sent := r.twilio.WaitSent(t, 1, 10*time.Second)
	if len(sent) != 1 || sent[0].Body != "Hi Maya, it ships today." || sent[0].To != customer {
		t.Fatalf("fake Twilio got %+v, want only the canned reply", sent)
	}
	s := r.wait("the reply", func(s string) bool { return strings.Contains(s, "> you - ") })
	t.Logf("screen with a note and a canned reply:\n%s", s)
	if got := r.twilio.Sent(); len(got) != 1 {
		t.Fatalf("fake Twilio got %d messages, want 1 (the note is never sent)", len(got))
	}
}
