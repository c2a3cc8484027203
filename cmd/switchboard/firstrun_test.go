package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// runOnce runs the binary to its end (it must not start serving) and
// returns its exit code and output.
func runOnce(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_STATS_INTERVAL=0", "PORT=", "SWITCHBOARD_ADDR=", "SWITCHBOARD_AMQP_URL=", "CLOUDAMQP_URL=")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit) && ctx.Err() == nil:
		return exit.ExitCode(), string(out)
	default:
		t.Fatalf("switchboard %q: %v\n%s", args, err, out)
		return 0, ""
	}
}

// TestHelpListsCommandsAndHidesSecrets: -help exits 0, names the commands,
// and shows a secret taken from the environment only as "(set)".
func TestHelpListsCommandsAndHidesSecrets(t *testing.T) {
	const (
		sec  = "s3cr3t-from-the-environment"
		adm  = "adm1n-from-the-environment"
		pass = "brokerpassw0rd"
	)
	env := []string{"SWITCHBOARD_SECRET=" + sec, "SWITCHBOARD_ADMIN_TOKEN=" + adm, "TWILIO_AUTH_TOKEN=" + authToken,
		"SWITCHBOARD_AMQP_URL=amqp://switchboard:" + pass + "@127.0.0.1:5672/switchboard"}
	for _, args := range [][]string{{"-help"}, {"-h"}, {"serve", "-help"}} {
		code, out := runOnce(t, env, args...)
		if code != 0 {
			t.Errorf("switchboard %q: exit %d, want 0\n%s", args, code, out)
		}
		for _, want := range []string{"switchboard [serve] [flags]", "switchboard token NAME", "switchboard products import FILE", "-secret string", "(set)", "-addr string", `(default "127.0.0.1:8080")`, "TWILIO_AUTH_TOKEN\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("switchboard %q does not say %q:\n%s", args, want, out)
			}
		}
		for _, leak := range []string{sec, adm, pass, authToken} {
			if strings.Contains(out, leak) {
				t.Errorf("switchboard %q prints a secret (%s):\n%s", args, leak, out)
			}
		}
	}
	for _, args := range [][]string{{"token", "-h"}, {"products", "-h"}} {
		code, out := runOnce(t, env, args...)
		if code != 0 || !strings.Contains(out, "usage: switchboard "+args[0]) || strings.Contains(out, sec) {
			t.Errorf("switchboard %q: exit %d, want 0 and a usage without the secret:\n%s", args, code, out)
		}
	}
}

// TestWeakSecretOffLoopback: a node that would listen beyond this machine
// refuses a placeholder or short secret, in one line, before it opens
// anything; on loopback the quick start's dev-secret is fine.
func TestWeakSecretOffLoopback(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"SWITCHBOARD_SECRET=change-me", `-secret: too weak to listen on 0.0.0.0:0, which is not loopback (it contains the placeholder "change-me")`},
		{"SWITCHBOARD_SECRET=dev-secret", `-secret: too weak`},
		{"SWITCHBOARD_SECRET=0123456789abcde", "fewer than 16"},
		{"SWITCHBOARD_ADMIN_TOKEN=dev-admin-change-me", "-admin-token: too weak"},
	} {
		data := filepath.Join(t.TempDir(), "data")
		code, out := runOnce(t, []string{"SWITCHBOARD_SECRET=" + strings.Repeat("x1", 16), tc.env}, "-addr", "0.0.0.0:0", "-data", data)
		if code != 2 || !strings.Contains(out, tc.want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("%s on 0.0.0.0: exit %d, want 2 and one line with %q:\n%s", tc.env, code, tc.want, out)
		}
		if _, err := os.Stat(data); err == nil {
			t.Errorf("%s: the node opened its data directory before refusing", tc.env)
		}
	}
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	p := start(t, sbt.FreePort(t), t.TempDir(), fake.URL(), "SWITCHBOARD_SECRET=dev-secret")
	requireReady(t, p)
}

// TestTakenPortSaysSo: the port is tried before the store is opened, and
// the cause is one line.
func TestTakenPortSaysSo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := filepath.Join(t.TempDir(), "data")
	code, out := runOnce(t, []string{"SWITCHBOARD_SECRET=" + secret}, "-addr", ln.Addr().String(), "-data", data)
	want := fmt.Sprintf("switchboard: -addr %s: the port is taken (another node or program listens there)", ln.Addr())
	if code != 2 || !strings.HasPrefix(out, want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("exit %d, want 2 and the one line %q...:\n%s", code, want, out)
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("the node opened its data directory before it found the port taken")
	}
}

// TestHeldDataDirSaysSo: a second node on a running node's data directory
// says who holds it, in one line, instead of "resource temporarily
// unavailable".
func TestHeldDataDirSaysSo(t *testing.T) {
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	dir := t.TempDir()
	start(t, sbt.FreePort(t), dir, fake.URL())
	code, out := runOnce(t, []string{"SWITCHBOARD_SECRET=" + secret}, "-addr", "127.0.0.1:0", "-data", dir)
	want := "switchboard: -data " + dir + ": another switchboard node holds this data directory (stop it, or give this node its own -data)"
	if code != 2 || strings.TrimSpace(out) != want {
		t.Errorf("exit %d, want 2 and the one line %q:\n%s", code, want, out)
	}
}

// TestWarnsTwilioWithoutPublicURL: with Twilio settings and no public URL
// replies never get a status callback; the node says so at start.
func TestWarnsTwilioWithoutPublicURL(t *testing.T) {
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	p := start(t, sbt.FreePort(t), t.TempDir(), fake.URL(), "SWITCHBOARD_PUBLIC_URL=")
	sbt.WaitFor(t, wait, "the warning", func() bool { return strings.Contains(p.logs.String(), "Twilio is configured without a public URL") })
	if !strings.Contains(p.logs.String(), "set -public-url (SWITCHBOARD_PUBLIC_URL)") {
		t.Errorf("the warning does not name the flag to set:\n%s", p.logs.String())
	}
	q := start(t, sbt.FreePort(t), t.TempDir(), fake.URL()) // with a public URL: no warning
	requireReady(t, q)
	if strings.Contains(q.logs.String(), switchboard.MsgNoPublicURL) {
		t.Errorf("warned although -public-url is set:\n%s", q.logs.String())
	}
}

// TestREADMEUdpstatsExample: the README's udpstats command, as written,
// shows a node started as the README starts it, on the same machine (both
// on their default interface, lo). Only the group's port is the test's
// own, given through the environment.
func TestREADMEUdpstatsExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const example = "`go run ./cmd/udpstats`"
	if !strings.Contains(string(readme), example) {
		t.Fatalf("README.md no longer says %s; keep this test in line with its udpstats example", example)
	}
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	group := fmt.Sprintf("239.255.77.77:%d", uc.LocalAddr().(*net.UDPAddr).Port)
	uc.Close()
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	start(t, sbt.FreePort(t), t.TempDir(), fake.URL(), "SWITCHBOARD_NODE=readme-node",
		"SWITCHBOARD_STATS_GROUP="+group, "SWITCHBOARD_STATS_IFACE=", "SWITCHBOARD_STATS_INTERVAL=200ms")

	cmd := exec.Command(udpstatsBinary, "-once", "-timeout", "10s") // the example, ending after one table
	cmd.Env = append(os.Environ(), "UDPSTATS_GROUP="+group, "UDPSTATS_IFACE=", "SWITCHBOARD_STATS_IFACE=", "SWITCHBOARD_STATS_GROUP=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "readme-node") {
		t.Fatalf("udpstats as in the README: %v\n%s", err, out)
	}
}
