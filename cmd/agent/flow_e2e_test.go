package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
	"github.com/switchboard/switchboard/switchboard/token"
)

// TestTransferAndSupervisorInTmux runs the real agent binary twice in
// tmux, as agent alice and as the supervisor, against a real node: alice
// transfers a conversation to bob with a note (Ctrl+G), and the
// supervisor sees the waiting line and assigns a waiting customer to bob
// (Ctrl+A).
func TestTransferAndSupervisorInTmux(t *testing.T) {
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
	tw := twiliotest.NewServer(sid, authToken)
	t.Cleanup(tw.Close)
	port := sbt.FreePort(t)
	base, ws := fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("ws://127.0.0.1:%d/agent", port)
	startNode(t, nodeBin, slicesDeleteEnv(append(os.Environ(),
		"SWITCHBOARD_SECRET="+secret, "SWITCHBOARD_ADMIN_TOKEN="+admin,
		"SWITCHBOARD_DATA="+filepath.Join(dir, "data"), fmt.Sprintf("SWITCHBOARD_ADDR=127.0.0.1:%d", port),
		"SWITCHBOARD_PUBLIC_URL="+base, "SWITCHBOARD_NODE=e2e", "SWITCHBOARD_STATS_INTERVAL=0",
		"TWILIO_ACCOUNT_SID="+sid, "TWILIO_AUTH_TOKEN="+authToken, "TWILIO_FROM=+15550001111", "TWILIO_API_URL="+tw.URL(),
	), "PORT", "SWITCHBOARD_AMQP_URL", "CLOUDAMQP_URL"), base)
	queue := func() protocol.QueueView {
		var v protocol.QueueView
		sbt.GetJSON(t, base+"/queue", admin, &v)
		return v
	}
	waitAgent := func(name, state string, load int) {
		t.Helper()
		sbt.WaitFor(t, 10*time.Second, name+" "+state, func() bool {
			for _, a := range queue().Agents {
				if a.Name == name && a.State == state && a.Load == load {
					return true
				}
			}
			return false
		})
	}
	sms := func(n int, phone, text string) {
		t.Helper()
		if code, body := sbt.PostForm(t, base, "", "/sms/twilio", authToken, sbt.InboundForm(fmt.Sprintf("SM%032d", n), phone, "+15550001111", text)); code != 200 {
			t.Fatalf("webhook: %d %s", code, body)
		}
	}

	sock := "sb-flow-" + fmt.Sprint(os.Getpid())
	tm := func(args ...string) string {
		t.Helper()
		b, err := exec.Command(tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	t.Cleanup(func() { _ = exec.Command(tmux, "-L", sock, "kill-server").Run() })
	waitScreen := func(win, what string, cond func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := tm("capture-pane", "-p", "-t", win)
			if cond(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; %s's screen:\n%s", what, win, s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	aliceTok, err := token.Issue([]byte(secret), "alice", 1, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tm("new-session", "-d", "-s", "alice", "-x", "120", "-y", "30",
		fmt.Sprintf("%s -url %s -token %s -ascii -log %s", agentBin, ws, aliceTok, filepath.Join(dir, "alice.log")))
	waitAgent("alice", protocol.AgentAvailable, 0)
	const c1, c2, c3 = "+15557650001", "+15557650002", "+15557650003"
	sms(1, c1, "My parcel never arrived")
	waitScreen("alice", "the customer", func(s string) bool { return strings.Contains(s, "My parcel never arrived") })

	bobTok, _ := token.Issue([]byte(secret), "bob", 1, time.Hour, time.Now())
	bob := sbt.DialAgent(t, ws, bobTok)
	bob.Send(protocol.Frame{Type: protocol.TypeAvailable, Capacity: 1})
	waitAgent("bob", protocol.AgentAvailable, 0)

	// alice: Ctrl+G, bob, Enter, a note, Enter.
	tm("send-keys", "-t", "alice", "C-g")
	waitScreen("alice", "the transfer prompt", func(s string) bool { return strings.Contains(s, "Transfer "+c1+" to") })
	tm("send-keys", "-t", "alice", "-l", "bob")
	tm("send-keys", "-t", "alice", "Enter")
	waitScreen("alice", "the note prompt", func(s string) bool { return strings.Contains(s, "Note for bob") })
	tm("send-keys", "-t", "alice", "-l", "ships from Denver, tracking asked")
	tm("send-keys", "-t", "alice", "Enter")
	f := bob.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c1 }, 10*time.Second)
	if f.Transfer == nil || *f.Transfer != (protocol.Transfer{From: "alice", Note: "ships from Denver, tracking asked"}) {
		t.Fatalf("bob's assigned: transfer %+v", f.Transfer)
	}
	s := waitScreen("alice", "the transfer done", func(s string) bool { return strings.Contains(s, "transferred "+c1) })
	t.Logf("alice after the transfer:\n%s", s)

	// bob goes away, alice takes c2, and c3 waits for the supervisor.
	bob.Send(protocol.Frame{Type: protocol.TypeAway})
	waitAgent("bob", protocol.AgentAway, 1)
	sms(2, c2, "Hi there")
	waitAgent("alice", protocol.AgentAvailable, 1)
	sms(3, c3, "Is anyone there?")
	tm("new-session", "-d", "-s", "sup", "-x", "120", "-y", "30",
		fmt.Sprintf("%s -url %s -supervisor -token %s -ascii -log %s", agentBin, ws, admin, filepath.Join(dir, "sup.log")))
	s = waitScreen("sup", "the waiting line", func(s string) bool {
		return strings.Contains(s, "1 waiting") && strings.Contains(s, "1. "+c3) && strings.Contains(s, "bob              away      1/1  on e2e")
	})
	t.Logf("the supervisor's screen:\n%s", s)
	tm("send-keys", "-t", "sup", "C-a")
	waitScreen("sup", "the assign prompt", func(s string) bool { return strings.Contains(s, "Assign "+c3+" to:") })
	tm("send-keys", "-t", "sup", "-l", "bob")
	tm("send-keys", "-t", "sup", "Enter")
	bob.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c3 }, 10*time.Second)
	waitScreen("sup", "the line empty", func(s string) bool {
		return strings.Contains(s, "0 waiting") && strings.Contains(s, "bob              away      2/1  on e2e")
	})
	tm("send-keys", "-t", "sup", "C-c")
	tm("send-keys", "-t", "alice", "C-c")
}
