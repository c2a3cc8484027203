package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestHelpNamesTheTokenCommand: -h shows "-token string" and how to make
// one; a backquoted word in the usage would become the flag's type in the
// listing (the old "-token switchboard token NAME").
func TestHelpNamesTheTokenCommand(t *testing.T) {
	_, bin := binaries(t)
	cmd := exec.Command(bin, "-h")
	cmd.Env = append(os.Environ(), "SWITCHBOARD_TOKEN=v1.secret-from-the-environment")
	out, _ := cmd.CombinedOutput() // flag exits 0 for -h
	help := string(out)
	if !strings.Contains(help, "  -token string\n") || !strings.Contains(help, "make one with: switchboard token NAME") {
		t.Errorf("agent -h:\n%s", help)
	}
	if strings.Contains(help, "secret-from-the-environment") {
		t.Errorf("agent -h prints the token taken from SWITCHBOARD_TOKEN:\n%s", help)
	}
	if strings.Contains(help, "-token switchboard") {
		t.Errorf("agent -h shows the token command as the flag's type:\n%s", help)
	}
}
