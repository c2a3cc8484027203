package sshdesk

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/ssh"
	"github.com/charmbracelet/x/ansi"
	"go.uber.org/goleak"
	gossh "golang.org/x/crypto/ssh"

	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// term is an interactive SSH session as an agent's terminal sees it.
type term struct {
	t      testing.TB
	client *gossh.Client
	sess   *gossh.Session
	in     io.WriteCloser
	out    *sbt.SyncBuffer
	done   chan error
}

// open signs in as user with signer and starts the desk on a PTY of
// width × height.
func (d *desk) open(user string, signer gossh.Signer, width, height int) *term {
	d.t.Helper()
	c, err := d.dial(user, gossh.PublicKeys(signer))
	if err != nil {
		d.t.Fatalf("sign in as %s: %v", user, err)
	}
	s, err := c.NewSession()
	if err != nil {
		d.t.Fatal(err)
	}
	tm := &term{t: d.t, client: c, sess: s, out: &sbt.SyncBuffer{}, done: make(chan error, 1)}
	s.Stdout, s.Stderr = tm.out, tm.out
	if tm.in, err = s.StdinPipe(); err != nil {
		d.t.Fatal(err)
	}
	if err := s.Setenv("LANG", "C.UTF-8"); err != nil {
		d.t.Fatal(err)
	}
	if err := s.RequestPty("xterm-256color", height, width, gossh.TerminalModes{}); err != nil {
		d.t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		d.t.Fatal(err)
	}
	go func() { tm.done <- s.Wait() }()
	d.t.Cleanup(func() { c.Close() })
	return tm
}

// screen is everything the session printed, without escape sequences.
func (tm *term) screen() string { return ansi.Strip(tm.out.String()) }

func (tm *term) waitFor(what string) {
	tm.t.Helper()
	sbt.WaitFor(tm.t, wait, fmt.Sprintf("%q on the screen", what), func() bool { return strings.Contains(tm.screen(), what) })
}

func (tm *term) ended() bool {
	select {
	case err := <-tm.done:
		tm.done <- err
		return true
	default:
		return false
	}
}

// An SSH session is an agent connection like any other: the node assigns
// it a conversation, the agent's reply is stored and sent as SMS.
func TestSessionWorksAConversation(t *testing.T) {
	alice, a := newKey(t)
	d := startDesk(t, a+" alice capacity=2\n", nil)
	tm := d.open("alice", alice, 100, 30)
	tm.waitFor("How can I help you?")

	const phone = "+15557654321"
	code, body := sbt.PostForm(t, d.base, testPublic, "/sms/twilio", testAuthToken, sbt.InboundForm("SMssh1", phone, testFrom, "Is the camcorder in stock?"))
	if code != 200 {
		t.Fatalf("webhook: %d %s", code, body)
	}
	tm.waitFor("Is the camcorder in stock?")
	if _, err := io.WriteString(tm.in, "Yes, two left!\r"); err != nil {
		t.Fatal(err)
	}
	sent := d.twilio.WaitSent(t, 1, wait)
	if sent[0].To != phone || sent[0].Body != "Yes, two left!" {
		t.Fatalf("sent %+v, want the reply to %s", sent[0], phone)
	}
	// Ctrl+C quits the program and ends the session.
	if _, err := io.WriteString(tm.in, "\x03"); err != nil {
		t.Fatal(err)
	}
	sbt.WaitFor(t, wait, "session ends after ctrl+c", tm.ended)
}

// Removing a key from the keys file ends the sessions it signed in.
func TestRemovedKeyEndsItsSession(t *testing.T) {
	alice, a := newKey(t)
	bob, b := newKey(t)
	d := startDesk(t, a+" alice\n"+b+" bob\n", nil)
	ta := d.open("alice", alice, 80, 24)
	tb := d.open("bob", bob, 80, 24)
	ta.waitFor("How can I help you?")
	tb.waitFor("How can I help you?")
	d.writeKeys(b + " bob\n")
	sbt.WaitFor(t, wait, "alice's session ends", ta.ended)
	if tb.ended() {
		t.Fatal("bob's session ended too")
	}
	if _, err := d.dial("alice", gossh.PublicKeys(alice)); !isRefusal(err) {
		t.Fatalf("alice signs in again after her key was removed: %v", err)
	}
	sbt.WaitFor(t, wait, "removal logged", func() bool {
		return strings.Contains(d.logs.String(), "ssh session ended: key removed")
	})
}

// A session without a terminal gets one line saying why and ends; no
// program runs.
func TestSessionNeedsATerminal(t *testing.T) {
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
	out := &sbt.SyncBuffer{}
	s.Stdout, s.Stderr = out, out
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	err = s.Wait()
	var exit *gossh.ExitError
	if !errors.As(err, &exit) || exit.ExitStatus() != 1 {
		t.Fatalf("Wait = %v, want exit status 1", err)
	}
	if !strings.Contains(out.String(), "needs a terminal") {
		t.Fatalf("output %q", out.String())
	}
}

// A closed session leaves no goroutine behind: not the program's, not its
// connection loop's, not the resize follower's.
func TestSessionLeavesNoGoroutine(t *testing.T) {
	alice, a := newKey(t)
	d := startDesk(t, a+" alice\n", nil)
	// Warm up once, so lazily started process-wide goroutines exist
	// before the snapshot.
	tm := d.open("alice", alice, 80, 24)
	tm.waitFor("How can I help you?")
	tm.client.Close()
	sbt.WaitFor(t, wait, "first session gone", func() bool { return d.srv.sessionCount() == 0 })

	before := goleak.IgnoreCurrent()
	for range 3 {
		tm := d.open("alice", alice, 80, 24)
		tm.waitFor("How can I help you?")
		if err := tm.sess.WindowChange(40, 120); err != nil {
			t.Fatal(err)
		}
		tm.client.Close()
	}
	sbt.WaitFor(t, wait, "sessions gone", func() bool { return d.srv.sessionCount() == 0 })
	// A Bubble Tea Tick command still waiting when its program ends
	// returns at its tick (the model ticks every second): poll.
	leaked := func() error {
		return goleak.Find(before, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
	}
	deadline := time.Now().Add(wait)
	for leaked() != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := leaked(); err != nil {
		t.Fatal(err)
	}
}

// freezer is a TCP proxy to addr that can stop passing bytes, as a client
// whose laptop lid closed: its connection neither closes nor answers.
type freezer struct {
	ln     net.Listener
	frozen chan struct{}
	stop   chan struct{} // closed at the end of the test
	once   sync.Once
}

func newFreezer(t *testing.T, addr string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, frozen: make(chan struct{}), stop: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); close(f.stop) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				return
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go f.pipe(c, s)
			go f.pipe(s, c)
		}
	}()
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		select {
		case <-f.frozen:
			<-f.stop // deliver nothing more; the test's cleanup closes both ends
			return
		default:
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (f *freezer) freeze() { f.once.Do(func() { close(f.frozen) }) }

// A client that stops answering keepalives loses its session, so the
// node's grace period starts instead of the agent looking present.
func TestSilentClientLosesItsSession(t *testing.T) {
	alice, a := newKey(t)
	d := startDesk(t, a+" alice\n", func(o *Options) { o.KeepAlive = 100 * time.Millisecond })
	fr := newFreezer(t, d.addr)
	d.addr = fr.ln.Addr().String()
	tm := d.open("alice", alice, 80, 24)
	tm.waitFor("How can I help you?")
	fr.freeze()
	sbt.WaitFor(t, wait, "session ended", func() bool { return d.srv.sessionCount() == 0 })
	sbt.WaitFor(t, wait, "logged", func() bool {
		return strings.Contains(d.logs.String(), "ssh session ended: no keepalive answer") && strings.Contains(d.logs.String(), "agent disconnected")
	})
}

// The capacity in the keys file is the session's capacity: with
// capacity=1 a second customer waits until the first conversation is
// released (the node's default would be 3).
func TestKeyCapacityIsTheSessionCapacity(t *testing.T) {
	alice, a := newKey(t)
	d := startDesk(t, a+" alice capacity=1\n", nil)
	tm := d.open("alice", alice, 100, 30)
	tm.waitFor("How can I help you?")
	sms := func(sid, phone, text string) {
		t.Helper()
		if code, body := sbt.PostForm(t, d.base, testPublic, "/sms/twilio", testAuthToken, sbt.InboundForm(sid, phone, testFrom, text)); code != 200 {
			t.Fatalf("webhook %s: %d %s", sid, code, body)
		}
	}
	const first, second = "+15550000101", "+15550000102"
	sms("SMcap1", first, "first customer here")
	tm.waitFor("first customer here")
	sms("SMcap2", second, "second customer here")
	// Frames reach the agent in the order the node decides: once the first
	// customer's next message is on screen, an assignment of the second
	// would be too.
	sms("SMcap3", first, "still the first one")
	tm.waitFor("still the first one")
	if strings.Contains(tm.screen(), second) {
		t.Fatalf("a second conversation was assigned with capacity=1:\n%s", tm.screen())
	}
	if _, err := io.WriteString(tm.in, "\x18"); err != nil { // ctrl+x: release
		t.Fatal(err)
	}
	tm.waitFor("second customer here")
}

func TestClampWindow(t *testing.T) {
	for _, tc := range []struct{ w, h, wantW, wantH int }{
		{100, 30, 100, 30},
		{0, 0, 1, 1},
		{-5, 7, 1, 7},
		{1 << 30, 1 << 30, maxColumns, maxRows},
		{maxColumns, maxRows, maxColumns, maxRows},
	} {
		if w, h := clampWindow(ssh.Window{Width: tc.w, Height: tc.h}); w != tc.wantW || h != tc.wantH {
			t.Errorf("clampWindow(%d×%d) = %d×%d, want %d×%d", tc.w, tc.h, w, h, tc.wantW, tc.wantH)
		}
	}
}

// A client claiming an enormous terminal gets the desk drawn at the
// largest size, not a node that tries to allocate cells for it.
func TestHugeWindowIsClamped(t *testing.T) {
	alice, a := newKey(t)
	d := startDesk(t, a+" alice\n", nil)
	tm := d.open("alice", alice, 1<<20, 1<<20)
	tm.waitFor("How can I help you?")
	if err := tm.sess.WindowChange(1<<24, 1<<24); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tm.in, "\x03"); err != nil {
		t.Fatal(err)
	}
	sbt.WaitFor(t, wait, "session ends after ctrl+c", tm.ended)
}

// The node keeps one connection per agent, newest first. A second SSH
// session of the same agent ends the first, instead of the two connection
// loops closing each other in turn.
func TestSecondSessionOfAnAgentReplacesTheFirst(t *testing.T) {
	laptop, a := newKey(t)
	phone, b := newKey(t)
	d := startDesk(t, a+" alice\n"+b+" alice\n", nil)
	first := d.open("alice", laptop, 80, 24)
	first.waitFor("How can I help you?")
	second := d.open("alice", phone, 80, 24)
	second.waitFor("How can I help you?")
	sbt.WaitFor(t, wait, "the first session ends", first.ended)
	connects := strings.Count(d.logs.String(), `msg="agent connected"`)
	// Were the two taking turns, the node would see a connection every
	// backoff interval (0.5 s at first); a quiet 3 s says they do not.
	time.Sleep(3 * time.Second)
	if n := strings.Count(d.logs.String(), `msg="agent connected"`); n != connects || second.ended() {
		t.Fatalf("agent connections %d → %d, second ended %v: the sessions take turns", connects, n, second.ended())
	}
}
