package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
	"github.com/switchboard/switchboard/switchboard/token"
)

const (
	secret    = "e2e-secret"
	admin     = "e2e-admin"
	account   = "AC0123456789abcdef0123456789abcdef"
	authToken = "0123456789abcdef0123456789abcdef"
	from      = "+15550000000"
	wait      = 10 * time.Second
)

var binary, udpstatsBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "switchboard")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build switchboard: %v\n%s", err, out)
		os.Exit(1)
	}
	udpstatsBinary = filepath.Join(dir, "udpstats")
	if out, err := exec.Command("go", "build", "-o", udpstatsBinary, "../udpstats").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build udpstats: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running switchboard binary.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	ws   string
	logs *syncBuffer
	done chan error
}

// syncBuffer collects a child process's output.
type syncBuffer = sbt.SyncBuffer

// start runs the binary on port with data in dir and waits until /readyz
// answers 200.
func start(t *testing.T, port int, dir, twilioURL string, extra ...string) *proc {
	t.Helper()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("SWITCHBOARD_ADDR=127.0.0.1:%d", port),
		"SWITCHBOARD_DATA="+dir,
		"SWITCHBOARD_SECRET="+secret,
		"SWITCHBOARD_ADMIN_TOKEN="+admin,
		"SWITCHBOARD_PUBLIC_URL="+base,
		"SWITCHBOARD_NODE=e2e",
		"SWITCHBOARD_GRACE=1s",
		"TWILIO_ACCOUNT_SID="+account,
		"TWILIO_AUTH_TOKEN="+authToken,
		"TWILIO_FROM="+from,
		"TWILIO_API_URL="+twilioURL,
	)
	if !hasPrefix(extra, "SWITCHBOARD_STATS_INTERVAL=") {
		cmd.Env = append(cmd.Env, "SWITCHBOARD_STATS_INTERVAL=0")
	}
	cmd.Env = append(cmd.Env, extra...)
	p := &proc{t: t, cmd: cmd, base: base, ws: fmt.Sprintf("ws://127.0.0.1:%d/agent", port), logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout = p.logs
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("switchboard output:\n%s", p.logs.String())
		}
	})
	sbt.WaitFor(t, wait, "node ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// requireReady fails the test unless the node answers /readyz with 200.
func requireReady(t *testing.T, p *proc) {
	t.Helper()
	resp, err := http.Get(p.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s/readyz: %d %s", p.base, resp.StatusCode, body)
	}
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) agent(name string, capacity int) *sbt.Agent {
	p.t.Helper()
	tok, err := token.Issue([]byte(secret), name, capacity, time.Hour, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	a := sbt.DialAgent(p.t, p.ws, tok)
	a.Expect(protocol.TypeAlert, nil, wait)
	a.Send(protocol.Frame{Type: protocol.TypeAvailable, Capacity: capacity})
	return a
}

func (p *proc) sms(sid, phone, body string) {
	p.t.Helper()
	code, resp := sbt.PostForm(p.t, p.base, "", "/sms/twilio", authToken, sbt.InboundForm(sid, phone, from, body))
	if code != 200 {
		p.t.Fatalf("webhook %s: %d %s", sid, code, resp)
	}
}

func phoneIs(phone string) func(protocol.Frame) bool {
	return func(f protocol.Frame) bool { return f.Phone == phone }
}

func TestEndToEnd(t *testing.T) {
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	p := start(t, sbt.FreePort(t), t.TempDir(), fake.URL())

	if code := sbt.GetJSON(t, p.base+"/", "", nil); code != 200 {
		t.Fatalf("GET / = %d", code)
	}
	alice := p.agent("alice", 1)
	bob := p.agent("bob", 1)
	const c1, c2, c3 = "+15552220001", "+15552220002", "+15552220003"

	// Assignment: two customers, two agents, one each.
	p.sms("SMe1", c1, "Hi, my camera arrived broken :(")
	p.sms("SMe2", c2, "Do you have the 55-inch TV in stock?")
	got := map[string]string{}
	for _, a := range []struct {
		name string
		ag   *sbt.Agent
	}{{"alice", alice}, {"bob", bob}} {
		f := a.ag.Expect(protocol.TypeAssigned, nil, wait)
		got[f.Phone] = a.name
	}
	if len(got) != 2 || got[c1] == got[c2] {
		t.Fatalf("assignments = %v", got)
	}
	owner := map[string]*sbt.Agent{"alice": alice, "bob": bob}
	a1, a2 := owner[got[c1]], owner[got[c2]]

	// Everyone is busy: c3 waits, and is offered when c2 is released.
	p.sms("SMe3", c3, "hello??")
	a2.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c2})
	a2.Expect(protocol.TypeReleased, phoneIs(c2), wait)
	a2.Expect(protocol.TypeAssigned, phoneIs(c3), wait)

	// A reply reaches the fake Twilio with the right To, From, Body and auth.
	a1.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "Sorry! A new one ships today.", Ref: "r-1"})
	ack := a1.Expect(protocol.TypeAck, nil, wait)
	sent := fake.WaitSent(t, 1, wait)
	if m := sent[0]; m.To != c1 || m.From != from || m.Body != "Sorry! A new one ships today." || !m.BasicAuthOK {
		t.Fatalf("sent = %+v", m)
	}
	// Twilio's status callback reaches the agent.
	if err := fake.SendStatus(p.base+"/sms/twilio/status", sent[0].Sid, "delivered"); err != nil {
		t.Fatal(err)
	}
	st := a1.Expect(protocol.TypeStatus, func(f protocol.Frame) bool { return f.Status == protocol.StatusDelivered }, wait)
	if st.ID != ack.ID {
		t.Fatalf("status for %s, want %s", st.ID, ack.ID)
	}

	// Sticky: c1 released, writes again while both agents have room: back to its agent.
	a1.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c1})
	a1.Expect(protocol.TypeReleased, phoneIs(c1), wait)
	a2.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c3})
	a2.Expect(protocol.TypeReleased, phoneIs(c3), wait)
	p.sms("SMe4", c1, "Thanks, that was quick!")
	if f := a1.Expect(protocol.TypeAssigned, phoneIs(c1), wait); len(f.List) != 3 {
		t.Fatalf("history on reassignment has %d messages, want 3", len(f.List))
	}

	// The admin view has it all, oldest first.
	var conv []protocol.Message
	if code := sbt.GetJSON(t, p.base+"/conversations/"+url.PathEscape(c1), admin, &conv); code != 200 || len(conv) != 3 {
		t.Fatalf("conversation: %d, %d messages", code, len(conv))
	}
	if conv[1].Direction != protocol.Out || conv[1].Status != protocol.StatusDelivered {
		t.Fatalf("reply stored as %+v", conv[1])
	}

	// SIGTERM: a clean, quick exit.
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("no exit within 10s of SIGTERM")
	}
	if !strings.Contains(p.logs.String(), "switchboard stopped") {
		t.Fatal("no clean shutdown in the log")
	}
}

// TestCrashRecovery kills the node with SIGKILL while webhooks are being
// posted, restarts it, and checks that every webhook that got 200 is stored
// exactly once and is offered to an agent.
func TestCrashRecovery(t *testing.T) {
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	port, dir := sbt.FreePort(t), t.TempDir()
	p := start(t, port, dir, fake.URL())

	const senders, phones = 8, 12
	var (
		mu    sync.Mutex
		acked = map[string]string{} // body marker -> phone
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				phone := fmt.Sprintf("+1555333%04d", (w*31+i)%phones)
				marker := fmt.Sprintf("m-%d-%d", w, i)
				form := sbt.InboundForm(fmt.Sprintf("SMcrash%02d%06d", w, i), phone, from, "order status? "+marker)
				req := signedRequest(p.base, form)
				resp, err := client.Do(req)
				if err != nil {
					return // the node is gone
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked[marker] = phone
					mu.Unlock()
				}
				// Twilio retries: post every fifth one twice.
				if i%5 == 0 {
					if resp, err := client.Do(signedRequest(p.base, form)); err == nil {
						resp.Body.Close()
					}
				}
			}
		}(w)
	}
	sbt.WaitFor(t, wait, "200 acknowledged webhooks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200
	})
	p.kill()
	cancel()
	wg.Wait()

	p2 := start(t, port, dir, fake.URL())
	// Every acknowledged message is stored exactly once.
	seen := map[string]int{}
	for i := 0; i < phones; i++ {
		phone := fmt.Sprintf("+1555333%04d", i)
		var conv []protocol.Message
		if code := sbt.GetJSON(t, p2.base+"/conversations/"+url.PathEscape(phone), admin, &conv); code != 200 {
			t.Fatalf("conversation %s: %d", phone, code)
		}
		for _, m := range conv {
			marker := m.Text[strings.LastIndexByte(m.Text, ' ')+1:]
			seen[marker]++
			if m.Phone != phone {
				t.Fatalf("message %s stored under %s", marker, phone)
			}
		}
	}
	for marker, n := range seen {
		if n != 1 {
			t.Errorf("%s stored %d times", marker, n)
		}
	}
	for marker := range acked {
		if seen[marker] != 1 {
			t.Errorf("acknowledged %s stored %d times", marker, seen[marker])
		}
	}
	// Every conversation is offered to an agent after the restart.
	agent := p2.agent("carol", 100)
	offered, phonesOffered := map[string]bool{}, map[string]bool{}
	for len(phonesOffered) < phones {
		f := agent.Expect(protocol.TypeAssigned, nil, wait)
		for _, m := range f.List {
			offered[m.Text[strings.LastIndexByte(m.Text, ' ')+1:]] = true
		}
		phonesOffered[f.Phone] = true
	}
	for marker := range acked {
		if !offered[marker] {
			t.Errorf("acknowledged %s was not offered after restart", marker)
		}
	}
	t.Logf("%d acknowledged before the crash, %d stored", len(acked), len(seen))
}

func signedRequest(base string, form url.Values) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, base+"/sms/twilio", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilioSignature(base+"/sms/twilio", form))
	return req
}

// TestCrashAfterTwilioTookTheReply: the node is killed after Twilio took
// a reply but before its answer came back. The restarted node resumes the
// reply, finds it at Twilio, and records it instead of sending it again.
func TestCrashAfterTwilioTookTheReply(t *testing.T) {
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	port, dir := sbt.FreePort(t), t.TempDir()
	p := start(t, port, dir, fake.URL())
	alice := p.agent("alice", 5)
	const phone = "+15553340001"
	p.sms("SMtook01", phone, "are you open?")
	alice.Expect(protocol.TypeAssigned, nil, wait)
	fake.HoldAnswers(1, 0) // until the node is gone
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: phone, Message: "until six", Ref: "took-1"})
	alice.Expect(protocol.TypeAck, nil, wait)
	sent := fake.WaitAccepted(t, 1, wait)
	p.kill()

	p = start(t, port, dir, fake.URL())
	sbt.WaitFor(t, wait, "the restarted node records Twilio's sid for the reply", func() bool {
		return strings.Contains(p.logs.String(), sent[0].Sid)
	})
	if n := len(fake.Accepted()); n != 1 {
		t.Fatalf("the reply reached Twilio %d times, want 1", n)
	}
}

func TestTokenCommand(t *testing.T) {
	cmd := exec.Command(binary, "token", "alice", "-capacity", "4", "-ttl", "1h")
	cmd.Env = append(os.Environ(), "SWITCHBOARD_SECRET="+secret)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	var last string
	for sc.Scan() {
		last = sc.Text()
	}
	c, err := token.Verify([]byte(secret), last, time.Now())
	if err != nil || c.Agent != "alice" || c.Capacity != 4 {
		t.Fatalf("token %q: %+v %v", last, c, err)
	}
	// Without a secret it refuses, clearly.
	cmd = exec.Command(binary, "token", "alice")
	cmd.Env = append(os.Environ(), "SWITCHBOARD_SECRET=")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "SWITCHBOARD_SECRET") {
		t.Fatalf("token without secret: %v %s", err, out)
	}
}

// A stray word stops flag parsing: the command refuses it instead of
// printing a token that silently lacks the flags after it.
func TestTokenCommandArgs(t *testing.T) {
	opts := switchboard.NewOptions()
	opts.Secret = secret
	tests := []struct {
		args    []string
		wantCap int
		wantErr string
	}{
		{[]string{"alice", "-capacity", "4"}, 4, ""},
		{[]string{"-capacity", "4", "alice"}, 4, ""},
		{[]string{"alice", "bob", "-capacity", "4"}, 0, `unexpected argument "bob"`},
		{[]string{"alice", "capacity", "4"}, 0, `unexpected argument "capacity"`},
		{[]string{"-capacity", "4", "alice", "extra"}, 0, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := tokenCmd(tc.args, opts, &out, &errOut)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if out.Len() != 0 {
					t.Fatalf("printed a token anyway: %q", out.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := token.Verify([]byte(secret), strings.TrimSpace(out.String()), time.Now())
			if err != nil || c.Agent != "alice" || c.Capacity != tc.wantCap {
				t.Fatalf("token %q: %+v %v", out.String(), c, err)
			}
		})
	}
}

// A stray word would leave the flags after it unparsed (the node would
// listen on the default address): the node refuses to start instead.
func TestServeRefusesStrayArguments(t *testing.T) {
	opts := switchboard.NewOptions()
	opts.Secret = secret
	opts.Addr = "127.0.0.1:0"
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	err := serve([]string{"-data", notDir, "stray", "-addr", "127.0.0.1:1"}, opts, &errOut)
	if err == nil || !strings.Contains(err.Error(), `unexpected argument "stray"`) {
		t.Fatalf("serve with a stray argument: %v", err)
	}
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// TestMetricsSeenByUdpstats runs the real node with metrics on lo (TTL 1,
// a random port) and the real udpstats monitor, which must see it.
func TestMetricsSeenByUdpstats(t *testing.T) {
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	group := fmt.Sprintf("239.255.77.77:%d", uc.LocalAddr().(*net.UDPAddr).Port)
	uc.Close()
	p := start(t, sbt.FreePort(t), t.TempDir(), fake.URL(),
		"SWITCHBOARD_NODE=metrics-e2e",
		"SWITCHBOARD_STATS_GROUP="+group,
		"SWITCHBOARD_STATS_IFACE=lo",
		"SWITCHBOARD_STATS_INTERVAL=200ms",
	)
	p.sms("SMmetrics1", "+15554440001", "counting")

	cmd := exec.Command(udpstatsBinary, "-json", "-once", "-group", group, "-iface", "lo", "-timeout", "10s")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("udpstats: %v\n%s", err, out)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct {
			Node    string             `json:"node"`
			Metrics map[string]float64 `json:"metrics"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("udpstats printed %q: %v", line, err)
		}
		if r.Node != "metrics-e2e" {
			continue
		}
		found = true
		for _, name := range []string{"sms.in", "runtime.goroutines", "runtime.heap_inuse", "agents.online", "conv.waiting", "route.latency.count", "store.append.p99"} {
			if _, ok := r.Metrics[name]; !ok {
				t.Errorf("metric %s missing: %v", name, r.Metrics)
			}
		}
		if r.Metrics["runtime.goroutines"] <= 0 {
			t.Errorf("goroutines = %v", r.Metrics["runtime.goroutines"])
		}
	}
	if !found {
		t.Fatalf("udpstats did not see the node:\n%s", out)
	}
}
