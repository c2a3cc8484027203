package sshdesk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	gossh "golang.org/x/crypto/ssh"

	"github.com/switchboard/switchboard/switchboard"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		// goleveldb's mpoolDrain goroutine outlives DB.Close by one tick; it
		// is not ours and does stop. A Bubble Tea Tick command still waiting
		// when its program ended returns at its tick (every second): poll.
		var err error
		for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if err = goleak.Find(goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain")); err == nil {
				break
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const (
	testSecret    = "sshdesk-test-secret"
	testAccount   = "AC0123456789abcdef0123456789abcdef"
	testAuthToken = "0123456789abcdef0123456789abcdef"
	testFrom      = "+15550000000"
	testPublic    = "https://sms.example.com"
	wait          = 10 * time.Second
)

// desk is a real node with an SSH desk in front of it, as cmd/switchboard
// wires them.
type desk struct {
	t     testing.TB
	node  *switchboard.Node
	srv   *Server
	keys  string // the keys file
	addr  string // SSH address
	ws    string // the node's /agent URL
	base  string // the node's http:// URL
	logs  *sbt.SyncBuffer
	hostK gossh.PublicKey

	twilio *twiliotest.Server
}

// startDesk starts a node and an SSH desk whose keys file holds keysFile.
func startDesk(t testing.TB, keysFile string, mutate func(*Options)) *desk {
	t.Helper()
	opts := switchboard.NewOptions()
	opts.Addr = "127.0.0.1:0"
	opts.DataDir = t.TempDir()
	opts.Node = "ssh-test"
	opts.Secret = testSecret
	opts.StatsInterval = 0
	opts.Grace = 2 * time.Second
	fake := twiliotest.NewServer(testAccount, testAuthToken)
	t.Cleanup(fake.Close)
	opts.PublicURL = testPublic
	opts.TwilioAccountSID, opts.TwilioAuthToken, opts.TwilioFrom, opts.TwilioAPIURL = testAccount, testAuthToken, testFrom, fake.URL()
	logs := &sbt.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	n, err := switchboard.New(opts, switchboard.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	d := &desk{t: t, node: n, twilio: fake, keys: filepath.Join(t.TempDir(), "authorized_keys"), ws: "ws://" + n.Addr().String() + "/agent", base: "http://" + n.Addr().String(), logs: logs}
	d.writeKeys(keysFile)
	o := Options{
		Addr:     "127.0.0.1:0",
		KeysFile: d.keys,
		HostKey:  filepath.Join(opts.DataDir, HostKeyFile),
		AgentURL: d.ws,
		Secret:   []byte(testSecret),
		Logger:   log,
		KeysPoll: 20 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("ssh close: %v", err)
		}
	})
	d.srv, d.addr, d.hostK = srv, srv.Addr().String(), srv.srv.HostSigners[0].PublicKey()
	return d
}

func (d *desk) writeKeys(content string) {
	d.t.Helper()
	// Write and rename, as editors and config management do, so the
	// watcher never reads half a file.
	tmp := d.keys + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, d.keys); err != nil {
		d.t.Fatal(err)
	}
}

// dial signs in as user with auth; the host key must be the desk's.
func (d *desk) dial(user string, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", d.addr, &gossh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: gossh.FixedHostKey(d.hostK),
		Timeout:         wait,
	})
}

func isRefusal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unable to authenticate")
}

func TestRefusesUnknownKeyWrongUserAndPasswords(t *testing.T) {
	alice, a := newKey(t)
	stranger, _ := newKey(t)
	d := startDesk(t, a+" alice\n", nil)
	for _, tc := range []struct {
		name string
		user string
		auth []gossh.AuthMethod
	}{
		{"unknown key", "alice", []gossh.AuthMethod{gossh.PublicKeys(stranger)}},
		{"wrong user name", "bob", []gossh.AuthMethod{gossh.PublicKeys(alice)}},
		{"root with the right key", "root", []gossh.AuthMethod{gossh.PublicKeys(alice)}},
		{"password", "alice", []gossh.AuthMethod{gossh.Password("alice")}},
		{"keyboard-interactive", "alice", []gossh.AuthMethod{gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			return []string{"alice"}, nil
		})}},
		{"no authentication", "alice", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := d.dial(tc.user, tc.auth...)
			if err == nil {
				c.Close()
				t.Fatal("signed in")
			}
			if !isRefusal(err) {
				t.Fatalf("err = %v, want an authentication refusal", err)
			}
		})
	}
	// The refusals are logged with why, never with a secret.
	sbt.WaitFor(t, wait, "refusals logged", func() bool {
		l := d.logs.String()
		return strings.Contains(l, "key not in the keys file") && strings.Contains(l, "signs in as alice, not as this user")
	})
	// And the right key as the right user signs in.
	c, err := d.dial("alice", gossh.PublicKeys(alice))
	if err != nil {
		t.Fatalf("alice's key as alice: %v", err)
	}
	c.Close()
}

// A signed-in connection gets the desk and nothing else: no command, no
// subsystem, no forwarding in either direction.
func TestRefusesExecSubsystemAndForwarding(t *testing.T) {
	alice, a := newKey(t)
	d := startDesk(t, a+" alice\n", nil)
	c, err := d.dial("alice", gossh.PublicKeys(alice))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	// The exec request itself is refused (not run and then failed).
	if err := s.Start("cat /etc/passwd"); err == nil {
		t.Fatal("exec request accepted")
	}
	s, err = c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestSubsystem("sftp"); err == nil {
		t.Fatal("sftp subsystem accepted")
	}
	s.Close()
	if conn, err := c.Dial("tcp", d.base[len("http://"):]); err == nil {
		conn.Close()
		t.Fatal("local port forwarding (direct-tcpip) opened")
	}
	if ln, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
		t.Fatal("remote port forwarding (tcpip-forward) accepted")
	}
	if _, _, err := c.OpenChannel("auth-agent@openssh.com", nil); err == nil {
		t.Fatal("agent channel opened")
	}
}

// Connections from one address beyond the burst are cut before any SSH
// byte; another address is not affected (checked with the per-source
// buckets: a test has only one loopback address).
func TestConnectionRateLimit(t *testing.T) {
	alice, a := newKey(t)
	d := startDesk(t, a+" alice\n", func(o *Options) { o.ConnBurst, o.ConnEvery = 2, time.Hour })
	for i := range 2 {
		c, err := d.dial("alice", gossh.PublicKeys(alice))
		if err != nil {
			t.Fatalf("connection %d within the burst: %v", i, err)
		}
		c.Close()
	}
	if c, err := d.dial("alice", gossh.PublicKeys(alice)); err == nil {
		c.Close()
		t.Fatal("a third connection within the hour was let in")
	}
	if !d.srv.conns.empty("127.0.0.1") || d.srv.conns.empty("192.0.2.7") {
		t.Fatal("the limit is not per source address")
	}
	sbt.WaitFor(t, wait, "refusal logged", func() bool {
		return strings.Contains(d.logs.String(), "too many connections from this address")
	})
}

// After AuthFailBurst failed sign-ins, even the right key is refused from
// that address until the bucket refills.
func TestFailedSignInLimit(t *testing.T) {
	alice, a := newKey(t)
	stranger, _ := newKey(t)
	d := startDesk(t, a+" alice\n", func(o *Options) { o.AuthFailBurst, o.AuthFailEvery = 3, time.Hour })
	for i := range 3 {
		if _, err := d.dial("alice", gossh.PublicKeys(stranger)); !isRefusal(err) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	sbt.WaitFor(t, wait, "failures counted", func() bool { return d.srv.authFails.empty("127.0.0.1") })
	c, err := d.dial("alice", gossh.PublicKeys(alice))
	if err == nil {
		c.Close()
		t.Fatal("the right key was let in from an address over its failure limit")
	}
	if isRefusal(err) {
		t.Fatalf("err = %v: the connection should be cut before authentication", err)
	}
}

// A connection that never signs in is closed after LoginTimeout.
func TestLoginTimeout(t *testing.T) {
	_, a := newKey(t)
	d := startDesk(t, a+" alice\n", func(o *Options) { o.LoginTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(wait))
	_, err = io.Copy(io.Discard, c) // the server's version line, then EOF
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the silent connection was still open after the wait")
		}
	}
	sbt.WaitFor(t, wait, "timeout counted as a failed sign-in", func() bool {
		return strings.Contains(d.logs.String(), "ssh sign-in refused")
	})
}

// The keys file is re-read on change: a new key signs in without a
// restart; a file with a bad line changes nothing.
func TestKeysFileReload(t *testing.T) {
	alice, a := newKey(t)
	bob, b := newKey(t)
	d := startDesk(t, a+" alice\n", nil)
	if _, err := d.dial("bob", gossh.PublicKeys(bob)); !isRefusal(err) {
		t.Fatalf("bob before he is listed: %v", err)
	}
	d.writeKeys(a + " alice\n" + b + " bob capacity=2\n")
	sbt.WaitFor(t, wait, "bob signs in", func() bool {
		c, err := d.dial("bob", gossh.PublicKeys(bob))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	d.writeKeys(b + " bob capacity=oops\n") // bad: nothing changes
	sbt.WaitFor(t, wait, "bad file logged", func() bool {
		return strings.Contains(d.logs.String(), "ssh keys file not applied")
	})
	var wg sync.WaitGroup
	for _, who := range []struct {
		user string
		s    gossh.Signer
	}{{"alice", alice}, {"bob", bob}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.dial(who.user, gossh.PublicKeys(who.s))
			if err != nil {
				t.Errorf("%s after a bad file: %v", who.user, err)
				return
			}
			c.Close()
		}()
	}
	wg.Wait()
}

// Close while connections are signing in and one sits silent in its
// handshake: Close returns without waiting for the login timeout, closes
// the silent one, and every connection's goroutine has ended when it does
// (run with -race: the ssh server's own Shutdown raced a handshake that
// finished while it waited).
func TestCloseDuringSignIns(t *testing.T) {
	alice, a := newKey(t)
	d := startDesk(t, a+" alice\n", func(o *Options) {
		o.LoginTimeout = time.Hour
		o.ConnBurst = 1000
	})
	silent, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	sbt.WaitFor(t, wait, "the silent connection is counted", func() bool {
		d.srv.mu.Lock()
		defer d.srv.mu.Unlock()
		return len(d.srv.open) == 1
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	signedIn := make(chan struct{}, 1)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := d.dial("alice", gossh.PublicKeys(alice))
				if err != nil {
					continue // refused once the server closes
				}
				select {
				case signedIn <- struct{}{}:
				default:
				}
				c.Close()
			}
		}()
	}
	select {
	case <-signedIn:
	case <-time.After(wait):
		close(stop)
		wg.Wait()
		t.Fatal("no sign-in succeeded")
	}
	closed := make(chan error, 1)
	go func() { closed <- d.srv.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Close waited for a connection in its handshake")
	}
	close(stop)
	wg.Wait()
	if err := silent.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, silent); err != nil {
		t.Errorf("the silent connection was not closed by Close: %v", err)
	}
	d.srv.mu.Lock()
	defer d.srv.mu.Unlock()
	if len(d.srv.open) != 0 {
		t.Errorf("%d connections still counted after Close", len(d.srv.open))
	}
}
