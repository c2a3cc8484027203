package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/agent/agenttest"
	"github.com/switchboard/switchboard/switchboard/loadgen"
	"github.com/switchboard/switchboard/switchboard/protocol"
)

// TestIdleCPU measures the CPU the real agent binary uses while idle with n
// open conversations (relative times still refresh every second). It takes
// 2×10 s, so it only runs with SWITCHBOARD_IDLE_CPU=1:
//
//	SWITCHBOARD_IDLE_CPU=1 go test -run IdleCPU -v ./cmd/agent
func TestIdleCPU(t *testing.T) {
	if os.Getenv("SWITCHBOARD_IDLE_CPU") == "" {
		t.Skip("set SWITCHBOARD_IDLE_CPU=1 to measure the idle CPU of the agent binary (20 s)")
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("needs tmux")
	}
	dir := t.TempDir()
	_, bin := binaries(t)
	for _, n := range []int{0, 20} {
		s := agenttest.New(t)
		now := time.Now()
		for i := range n {
			phone := fmt.Sprintf("+1555000%04d", i)
			var msgs []protocol.Message
			for j := range 20 {
				msgs = append(msgs, protocol.Message{Text: fmt.Sprintf("message %d, thanks for the quick answer!", j), Received: now.Add(-time.Duration(40-j) * time.Second).UnixMilli()})
			}
			s.AddConversation(phone, msgs...)
		}
		sock := fmt.Sprintf("sb-idle-%d-%d", os.Getpid(), n)
		cmd := fmt.Sprintf("%s -url %s -token %s -log %s", bin, s.URL(), s.Token, filepath.Join(dir, "agent.log"))
		if out, err := exec.Command(tmux, "-L", sock, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", "exec "+cmd).CombinedOutput(); err != nil {
			t.Fatalf("tmux: %v %s", err, out)
		}
		out, _ := exec.Command(tmux, "-L", sock, "display", "-p", "#{pane_pid}").Output()
		pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("tmux pane pid %q: %v", out, err)
		}
		time.Sleep(2 * time.Second) // start-up and first render are not idle
		t1, w1 := cpuTime(t, pid), time.Now()
		time.Sleep(10 * time.Second)
		t2, w2 := cpuTime(t, pid), time.Now()
		_ = exec.Command(tmux, "-L", sock, "kill-server").Run()
		pct := (t2 - t1).Seconds() / w2.Sub(w1).Seconds() * 100
		t.Logf("idle CPU with %d conversations: %.2f%% of a core (%v of CPU in %v)", n, pct, t2-t1, w2.Sub(w1).Round(time.Millisecond))
		if n == 20 && pct >= 2 {
			t.Errorf("idle CPU %.2f%% ≥ 2%%", pct)
		}
	}
}

// cpuTime is the CPU time pid has used.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	d, err := loadgen.CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
