package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	"github.com/switchboard/switchboard/switchboard/sshdesk"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// sshNode is a node binary serving the agent desk over SSH, and what the
// system ssh client needs to reach it.
type sshNode struct {
	*proc
	t          *testing.T
	dir        string
	port       int
	keys       string // the keys file
	knownHosts string
}

func startSSHNode(t *testing.T, twilioURL, keysFile string, extra ...string) *sshNode {
	t.Helper()
	dir := t.TempDir()
	n := &sshNode{t: t, dir: dir, port: sbt.FreePort(t), keys: filepath.Join(dir, "agents"), knownHosts: filepath.Join(dir, "known_hosts")}
	n.writeKeys(keysFile)
	data := filepath.Join(dir, "data")
	n.proc = start(t, sbt.FreePort(t), data, twilioURL, append([]string{
		fmt.Sprintf("SWITCHBOARD_SSH_ADDR=127.0.0.1:%d", n.port), "SWITCHBOARD_SSH_KEYS=" + n.keys, "SWITCHBOARD_GRACE=30s"}, extra...)...)
	sbt.WaitFor(t, wait, "ssh listening", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	// Pin the host key the node created in its data directory: ssh runs
	// with StrictHostKeyChecking=yes.
	priv, err := os.ReadFile(filepath.Join(data, sshdesk.HostKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("[127.0.0.1]:%d %s", n.port, gossh.MarshalAuthorizedKey(signer.PublicKey()))
	if err := os.WriteFile(n.knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *sshNode) writeKeys(content string) {
	n.t.Helper()
	tmp := n.keys + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Rename(tmp, n.keys); err != nil {
		n.t.Fatal(err)
	}
}

// sshArgs is the system ssh command line for user with identity file id.
func (n *sshNode) sshArgs(id, user string, extra ...string) []string {
	args := []string{"ssh", "-F", "/dev/null", "-i", id, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + n.knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-o", "ConnectTimeout=10", "-p", fmt.Sprint(n.port)}
	return append(append(args, extra...), user+"@127.0.0.1")
}

// keygen makes an ed25519 key pair with ssh-keygen and returns the private
// key's path and the public key line without its comment.
func keygen(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	id := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", id).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(id + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return id, strings.TrimSpace(string(pub))
}

// needSSH returns tmux's path, or skips the test when ssh, ssh-keygen or
// tmux is missing; SWITCHBOARD_REQUIRE_SSH=1 (CI) makes that a failure.
func needSSH(t *testing.T) string {
	t.Helper()
	var tmux string
	for _, tool := range []string{"ssh", "ssh-keygen", "tmux"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			msg := "needs " + tool + " (apt-get install openssh-client tmux; CI sets SWITCHBOARD_REQUIRE_SSH=1)"
			if os.Getenv("SWITCHBOARD_REQUIRE_SSH") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		tmux = p
	}
	return tmux
}

// tmuxTerm is one tmux server running one command in a window.
type tmuxTerm struct {
	t    *testing.T
	tmux string
	sock string
}

func newTmux(t *testing.T, tmux, name string, width, height int, argv []string) *tmuxTerm {
	t.Helper()
	tt := &tmuxTerm{t: t, tmux: tmux, sock: fmt.Sprintf("sb-ssh-%s-%d", name, os.Getpid())}
	tt.run("new-session", "-d", "-s", "desk", "-x", fmt.Sprint(width), "-y", fmt.Sprint(height), "exec "+strings.Join(argv, " "))
	t.Cleanup(tt.kill)
	return tt
}

func (tt *tmuxTerm) run(args ...string) string {
	tt.t.Helper()
	b, err := exec.Command(tt.tmux, append([]string{"-L", tt.sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		tt.t.Fatalf("tmux %v: %v\n%s", args, err, b)
	}
	return string(b)
}

func (tt *tmuxTerm) kill() { _ = exec.Command(tt.tmux, "-L", tt.sock, "kill-server").Run() }

func (tt *tmuxTerm) gone() bool {
	return exec.Command(tt.tmux, "-L", tt.sock, "has-session", "-t", "desk").Run() != nil
}

func (tt *tmuxTerm) screen() string {
	b, _ := exec.Command(tt.tmux, "-L", tt.sock, "capture-pane", "-p", "-t", "desk").CombinedOutput()
	return string(b)
}

func (tt *tmuxTerm) waitScreen(what string, cond func(string) bool) string {
	tt.t.Helper()
	var s string
	deadline := time.Now().Add(wait)
	for {
		if s = tt.screen(); cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			tt.t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func widest(screen string) int {
	w := 0
	for _, l := range strings.Split(screen, "\n") {
		w = max(w, len([]rune(strings.TrimRight(l, " "))))
	}
	return w
}

// TestSSHDeskEndToEnd: an agent listed in the keys file works a whole
// conversation with the system ssh client, resizes, drops and comes back
// within the grace period to the same conversation.
func TestSSHDeskEndToEnd(t *testing.T) {
	tmux := needSSH(t)
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	keyDir := t.TempDir()
	id, pub := keygen(t, keyDir, "alice")
	n := startSSHNode(t, fake.URL(), pub+" alice capacity=2\n")

	term := newTmux(t, tmux, "e2e", 100, 30, n.sshArgs(id, "alice", "-tt"))
	term.waitScreen("the desk, connected", func(s string) bool {
		return strings.Contains(s, "* connected") && strings.Contains(s, "How can I help you?")
	})

	const customer = "+15557654321"
	n.sms("SMssh"+strings.Repeat("1", 29), customer, "Hi! Is the Full HD camcorder in stock?")
	term.waitScreen("the inbound message", func(s string) bool { return strings.Contains(s, "Full HD camcorder in stock?") })

	const reply = "Yes, two left: ordering one for you now"
	term.run("send-keys", "-t", "desk", "-l", reply)
	term.waitScreen("the reply in the composer", func(s string) bool { return strings.Contains(s, "ordering one") })
	term.run("send-keys", "-t", "desk", "Enter")
	sent := fake.WaitSent(t, 1, wait)
	if sent[0].To != customer || sent[0].Body != reply {
		t.Fatalf("fake Twilio got %+v, want %q to %s", sent[0], reply, customer)
	}

	// The program follows the window: drawn for 100 columns, then 140.
	s := term.screen()
	if w := widest(s); w > 100 {
		t.Fatalf("a %d-column line in a 100-column window:\n%s", w, s)
	}
	term.run("resize-window", "-t", "desk", "-x", "140", "-y", "40")
	s = term.waitScreen("the desk redrawn at 140 columns", func(s string) bool { return widest(s) > 100 && strings.Contains(s, customer) })
	t.Logf("the desk over ssh, resized:\n%s", s)

	// Drop the connection (the ssh process dies) and come back within the
	// 30 s grace period: the conversation is still alice's.
	term.kill()
	sbt.WaitFor(t, wait, "alice disconnected", func() bool { return strings.Contains(n.logs.String(), "agent disconnected") })
	term = newTmux(t, tmux, "e2e2", 100, 30, n.sshArgs(id, "alice", "-tt"))
	term.waitScreen("the same conversation after reconnecting", func(s string) bool {
		return strings.Contains(s, "* connected") && strings.Contains(s, customer) && strings.Contains(s, "Full HD camcorder in stock?")
	})
	n.sms("SMssh"+strings.Repeat("2", 29), customer, "Great, thanks a lot")
	term.waitScreen("the next message in the same session", func(s string) bool { return strings.Contains(s, "thanks a lot") })
	if strings.Contains(n.logs.String(), "level=ERROR") {
		t.Fatalf("the node logged an error:\n%s", n.logs.String())
	}

	term.run("send-keys", "-t", "desk", "C-c")
	sbt.WaitFor(t, wait, "ssh exits after ctrl+c", term.gone)
}

// TestSSHDeskRefusals: the system ssh client is refused with an unlisted
// key and with the wrong user name, and a removed key ends its session.
func TestSSHDeskRefusals(t *testing.T) {
	tmux := needSSH(t)
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	keyDir := t.TempDir()
	alice, alicePub := keygen(t, keyDir, "alice")
	bob, bobPub := keygen(t, keyDir, "bob")
	stranger, _ := keygen(t, keyDir, "stranger")
	n := startSSHNode(t, fake.URL(), alicePub+" alice\n"+bobPub+" bob\n")

	for _, tc := range []struct{ name, id, user string }{
		{"unknown key", stranger, "alice"},
		{"wrong user name", alice, "bob"},
		{"root", alice, "root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command("ssh", n.sshArgs(tc.id, tc.user, "-T")[1:]...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "Permission denied (publickey)") {
				t.Fatalf("ssh: %v\n%s", err, out)
			}
		})
	}

	// A command instead of the desk is refused too.
	out, err := exec.Command("ssh", append(n.sshArgs(alice, "alice", "-T")[1:], "cat", "/etc/passwd")...).CombinedOutput()
	if err == nil || strings.Contains(string(out), "root:") {
		t.Fatalf("exec over ssh: %v\n%s", err, out)
	}

	ta := newTmux(t, tmux, "alice", 100, 30, n.sshArgs(alice, "alice", "-tt"))
	tb := newTmux(t, tmux, "bob", 100, 30, n.sshArgs(bob, "bob", "-tt"))
	ta.waitScreen("alice's desk", func(s string) bool { return strings.Contains(s, "* connected") })
	tb.waitScreen("bob's desk", func(s string) bool { return strings.Contains(s, "* connected") })
	n.writeKeys(bobPub + " bob\n")
	sbt.WaitFor(t, wait, "alice's session ends when her key is removed", ta.gone)
	if tb.gone() {
		t.Fatal("bob's session ended too")
	}
	out, err = exec.Command("ssh", n.sshArgs(alice, "alice", "-T")[1:]...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied (publickey)") {
		t.Fatalf("alice after her key was removed: %v\n%s", err, out)
	}
}

// TestSSHDeskCluster: an SSH session on one node is an agent of the
// cluster: a customer who texts another node reaches it, and the reply goes
// out once.
func TestSSHDeskCluster(t *testing.T) {
	tmux := needSSH(t)
	c := newClusterRun(t)
	n1 := c.node("n1")
	id, pub := keygen(t, t.TempDir(), "alice")
	n2 := startSSHNode(t, c.fake.URL(), pub+" alice\n", "SWITCHBOARD_AMQP_URL="+c.amqp, "SWITCHBOARD_AMQP_EXCHANGE="+c.exchange,
		"SWITCHBOARD_NODE=n2", "SWITCHBOARD_PUBLIC_URL=https://sms.example.test")
	term := newTmux(t, tmux, "cluster", 100, 30, n2.sshArgs(id, "alice", "-tt"))
	term.waitScreen("the desk on n2", func(s string) bool { return strings.Contains(s, "* connected") })

	const customer = "+15557770042"
	// n1 may hear of alice a moment after she connected to n2: the webhook
	// is answered 200 either way and the conversation waits until she is
	// known cluster-wide.
	if code := n1.smsSigned("SMsshcluster1", customer, "texting the other node"); code != 200 {
		t.Fatalf("webhook to n1: %d", code)
	}
	term.waitScreen("n1's customer on n2's desk", func(s string) bool { return strings.Contains(s, "texting the other node") })
	term.run("send-keys", "-t", "desk", "-l", "answered over ssh")
	term.waitScreen("the reply in the composer", func(s string) bool { return strings.Contains(s, "answered over ssh") })
	term.run("send-keys", "-t", "desk", "Enter")
	sent := c.fake.WaitSent(t, 1, wait)
	if sent[0].To != customer || sent[0].Body != "answered over ssh" {
		t.Fatalf("fake Twilio got %+v", sent[0])
	}
	requireEqualConversations(t, []string{customer}, n1, n2.proc)
	if n := len(c.fake.Sent()); n != 1 {
		t.Fatalf("the reply was sent %d times", n)
	}
}

// A keys file with a bad line stops the node at start with the line and
// why, before any agent can sign in.
func TestSSHDeskBadKeysFileAtStart(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "agents")
	if err := os.WriteFile(keys, []byte("# agents\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7o3Rl0gZg0nL2Xh3v5sQeY7bq0cG6m9m3yQ3w9kq1J\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SWITCHBOARD_ADDR=127.0.0.1:%d", sbt.FreePort(t)), "SWITCHBOARD_DATA="+filepath.Join(dir, "data"),
		"SWITCHBOARD_SECRET="+secret, "SWITCHBOARD_STATS_INTERVAL=0",
		fmt.Sprintf("SWITCHBOARD_SSH_ADDR=127.0.0.1:%d", sbt.FreePort(t)), "SWITCHBOARD_SSH_KEYS="+keys)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "-ssh-keys "+keys+": line 2: no agent name") {
		t.Fatalf("output does not name the line:\n%s", out)
	}
}
