package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"github.com/switchboard/switchboard/switchboard/loadgen"
	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
	"github.com/switchboard/switchboard/switchboard/token"
)

// TestSSHSessionMemory measures the node's memory per idle SSH session
// beside a WebSocket agent, in the same run: two fresh nodes (a build
// without -race), one with N WebSocket agents, one with N SSH sessions
// (in-process SSH clients with a 100×30 PTY), each sampled before and after
// 10 s of idling. N is 50 (SWITCHBOARD_SSH_MEMORY_N); the desk's per-address
// connection limit paces the SSH dials to one a second after the first 10.
// It only runs with SWITCHBOARD_SSH_MEMORY=1:
//
//	SWITCHBOARD_SSH_MEMORY=1 go test -count=1 -run SSHSessionMemory -v ./cmd/switchboard
func TestSSHSessionMemory(t *testing.T) {
	if os.Getenv("SWITCHBOARD_SSH_MEMORY") != "1" {
		t.Skip("set SWITCHBOARD_SSH_MEMORY=1 to measure node memory per idle SSH session (about 80 s)")
	}
	n := 50
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_SSH_MEMORY_N")); err == nil && v > 0 {
		n = v
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchboard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var keys strings.Builder
	signers := make([]gossh.Signer, n)
	for i := range n {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := gossh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		signers[i] = s
		fmt.Fprintf(&keys, "%s agent-%d\n", strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey()))), i)
	}
	keysFile := filepath.Join(dir, "agents")
	if err := os.WriteFile(keysFile, []byte(keys.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// WebSocket agents.
	ws := startBench(t, bin, filepath.Join(dir, "ws"))
	before := rss(t, ws.pid)
	for i := range n {
		tok, err := token.Issue([]byte(secret), fmt.Sprintf("agent-%d", i), 1, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		a := sbt.DialAgent(t, ws.ws, tok)
		a.Expect(protocol.TypeAlert, nil, wait)
		a.Send(protocol.Frame{Type: protocol.TypeAvailable, Capacity: 1})
	}
	wsAfter, wsCPU := idle(t, ws.pid)
	ws.stop()

	// SSH sessions.
	sshPort := sbt.FreePort(t)
	sn := startBench(t, bin, filepath.Join(dir, "ssh"), fmt.Sprintf("SWITCHBOARD_SSH_ADDR=127.0.0.1:%d", sshPort), "SWITCHBOARD_SSH_KEYS="+keysFile)
	sbt.WaitFor(t, wait, "ssh listening", func() bool { return strings.Contains(sn.logs.String(), "ssh agent desk listening") })
	sshBefore := rss(t, sn.pid)
	for i, s := range signers {
		// The desk lets one address open 10 connections at once, then one a
		// second: pace the dials.
		var c *gossh.Client
		var err error
		for try := 0; try < 10; try++ {
			if c, err = gossh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", sshPort), &gossh.ClientConfig{
				User: fmt.Sprintf("agent-%d", i), Auth: []gossh.AuthMethod{gossh.PublicKeys(s)},
				HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: wait,
			}); err == nil {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		out := &sbt.SyncBuffer{}
		sess.Stdout = out
		if err := sess.RequestPty("xterm-256color", 30, 100, gossh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
		if err := sess.Shell(); err != nil {
			t.Fatal(err)
		}
		sbt.WaitFor(t, wait, "desk connected", func() bool { return strings.Contains(ansi.Strip(out.String()), "How can I help you?") })
	}
	sshAfter, sshCPU := idle(t, sn.pid)
	sn.stop()

	perWS := (wsAfter - before) * 1024 / int64(n)
	perSSH := (sshAfter - sshBefore) * 1024 / int64(n)
	t.Logf("%d WebSocket agents: node RSS %d KiB → %d KiB after 10 s idle: %d bytes per agent; idle CPU %v", n, before, wsAfter, perWS, wsCPU)
	t.Logf("%d SSH sessions:     node RSS %d KiB → %d KiB after 10 s idle: %d bytes per session; idle CPU %v", n, sshBefore, sshAfter, perSSH, sshCPU)
	t.Logf("an idle SSH session costs the node %.1f× a WebSocket agent", float64(perSSH)/float64(perWS))
}

type benchNode struct {
	t    *testing.T
	cmd  *exec.Cmd
	pid  int
	ws   string
	logs *sbt.SyncBuffer
	done chan error
}

func startBench(t *testing.T, bin, data string, extra ...string) *benchNode {
	t.Helper()
	port := sbt.FreePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SWITCHBOARD_ADDR=127.0.0.1:%d", port), "SWITCHBOARD_DATA="+data,
		"SWITCHBOARD_SECRET="+secret, "SWITCHBOARD_STATS_INTERVAL=0", "SWITCHBOARD_NODE=bench")
	cmd.Env = append(cmd.Env, extra...)
	b := &benchNode{t: t, cmd: cmd, ws: fmt.Sprintf("ws://127.0.0.1:%d/agent", port), logs: &sbt.SyncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = b.logs, b.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.pid = cmd.Process.Pid
	go func() { b.done <- cmd.Wait() }()
	t.Cleanup(b.stop)
	sbt.WaitFor(t, wait, "node listening", func() bool { return strings.Contains(b.logs.String(), "switchboard listening") })
	return b
}

func (b *benchNode) stop() {
	if b.cmd.ProcessState == nil {
		b.cmd.Process.Kill()
		<-b.done
	}
}

// idle lets the node idle 10 s and returns its RSS (KiB) and the CPU it
// used meanwhile.
func idle(t *testing.T, pid int) (int64, time.Duration) {
	t.Helper()
	time.Sleep(2 * time.Second) // connecting is not idling
	c1, err := loadgen.CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	c2, err := loadgen.CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	return rss(t, pid), c2 - c1
}

// rss is pid's resident set size in KiB (Linux).
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
