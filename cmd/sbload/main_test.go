package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

const (
	secret    = "cmd-test-secret"
	account   = "AC0123456789abcdef0123456789abcdef"
	authToken = "0123456789abcdef0123456789abcdef"
	from      = "+15550000000"
)

// freeAddr returns a loopback address that was free a moment ago (the
// node binary and the fake API must know each other's address up front).
func freeAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", sbt.FreePort(t))
}

// The switchboard binary, built once for all tests of the package.
var (
	binDir    string
	bin       string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "sbload-test-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// startBinary builds the real switchboard binary into a temporary
// directory and runs it on loopback, sending replies to twilioAddr.
func startBinary(t *testing.T, twilioAddr string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the switchboard binary")
	}
	buildOnce.Do(func() {
		bin = filepath.Join(binDir, "switchboard")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/switchboard/switchboard/cmd/switchboard").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build switchboard: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"SWITCHBOARD_ADDR="+addr, "SWITCHBOARD_DATA="+filepath.Join(dir, "data"), "SWITCHBOARD_PUBLIC_URL="+base,
		"SWITCHBOARD_SECRET="+secret, "SWITCHBOARD_STATS_INTERVAL=0", "SWITCHBOARD_AMQP_URL=", "CLOUDAMQP_URL=",
		"TWILIO_ACCOUNT_SID="+account, "TWILIO_AUTH_TOKEN="+authToken, "TWILIO_FROM="+from,
		"TWILIO_API_URL=http://"+twilioAddr,
	)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("switchboard did not stop on SIGTERM; logs:\n%s", logs.String())
		}
	})
	sbt.WaitFor(t, 10*time.Second, "the node to be ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestShortRunAgainstBinary is CI's check of sbload: a few seconds at a
// low rate against the real binary, zero loss, exit 0.
func TestShortRunAgainstBinary(t *testing.T) {
	twilioAddr := freeAddr(t)
	node := startBinary(t, twilioAddr)
	var stdout, stderr bytes.Buffer
	args := []string{"-target", node, "-rate", "50", "-duration", "2s", "-agents", "3", "-capacity", "20",
		"-customers", "30", "-think", "20ms", "-reply", "1", "-dup", "0.1", "-json", "-quiet"}
	code := run(context.Background(), args, env(map[string]string{
		"SWITCHBOARD_SECRET": secret, "TWILIO_AUTH_TOKEN": authToken, "TWILIO_ACCOUNT_SID": account,
		"TWILIO_FROM": from, "TWILIO_API_URL": "http://" + twilioAddr, "SWITCHBOARD_PUBLIC_URL": node,
	}), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	var rep struct {
		Inbound struct{ Sent, Acked, Delivered, Lost int64 }
		Replies struct {
			Acked    int64
			AtSMSAPI int64 `json:"at_sms_api"`
		}
		Failures []string
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-json output: %v\n%s", err, stdout.String())
	}
	if rep.Inbound.Sent < 80 || rep.Inbound.Delivered != rep.Inbound.Sent || rep.Inbound.Lost != 0 || len(rep.Failures) != 0 {
		t.Errorf("report: %+v", rep)
	}
	if rep.Replies.Acked == 0 || rep.Replies.AtSMSAPI != rep.Replies.Acked {
		t.Errorf("replies: %+v (status callbacks need the node's public URL to be loopback)", rep.Replies)
	}
}

// TestLostMessageExitsNonZero: a test double in front of the node answers
// one webhook 200 without passing it on; sbload must exit 1 and name it.
func TestLostMessageExitsNonZero(t *testing.T) {
	twilioAddr := freeAddr(t)
	node := startBinary(t, twilioAddr)
	u, _ := url.Parse(node)
	proxy := httputil.NewSingleHostReverseProxy(u)
	const lost = "SM0000000c000000000000000000000007" // run 12, message 7
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/sms/twilio" {
			body, _ := io.ReadAll(r.Body)
			if form, _ := url.ParseQuery(string(body)); form.Get("MessageSid") == lost {
				io.WriteString(w, "<Response></Response>")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	var stdout, stderr bytes.Buffer
	args := []string{"-target", front.URL, "-public-url", node, "-rate", "30", "-duration", "1s", "-drain", "2s",
		"-agents", "2", "-customers", "10", "-dup", "0", "-run-id", "12", "-quiet"}
	code := run(context.Background(), args, env(map[string]string{
		"SWITCHBOARD_SECRET": secret, "TWILIO_AUTH_TOKEN": authToken, "TWILIO_ACCOUNT_SID": account,
		"TWILIO_API_URL": "http://" + twilioAddr,
	}), &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "FAIL: LOST: 1 acknowledged inbound messages never reached an agent: "+lost) {
		t.Errorf("output does not name the lost message %s:\n%s", lost, stdout.String())
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad rate", []string{"-rate", "fast"}, "-rate"},
		{"agents without secret", []string{"-agents", "2"}, "-secret"},
		{"bad baseline", []string{"-baseline", "disk"}, "-baseline"},
		{"stray argument", []string{"now"}, "unexpected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, env(nil), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and a message naming %s", code, stderr.String(), tc.want)
			}
		})
	}
}
