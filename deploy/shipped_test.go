package deploy_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// testOnly reports whether a package is test code that must not be linked
// into a shipped binary: package testing and its sub-packages, httptest,
// and this module's test helpers (named *test by convention: twiliotest,
// switchboardtest, bustest).
func testOnly(pkg string) bool {
	return pkg == "testing" || strings.HasPrefix(pkg, "testing/") || pkg == "net/http/httptest" ||
		(strings.HasPrefix(pkg, "github.com/switchboard/switchboard/") && strings.HasSuffix(pkg, "test"))
}

// TestShippedBinariesLinkNoTestCode: no binary under cmd/ links test code
// (issue 16: the fake Twilio that sbload serves is fakeapi, not the test
// helper twiliotest). A failure names the packages that import it.
func TestShippedBinariesLinkNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "../cmd/...").Output()
	if err != nil {
		t.Fatalf("go list ../cmd/...: %v\n%s", err, stderrOf(err))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 4 {
		t.Fatalf("go list found %d commands, want agent, sbload, switchboard, udpstats:\n%s", len(lines), out)
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		cmd, deps := fields[0], fields[1:]
		if !slices.Contains(deps, "fmt") {
			t.Fatalf("%s: the dependency list looks wrong (no fmt): %q", cmd, line)
		}
		for _, dep := range deps {
			if testOnly(dep) {
				t.Errorf("%s links test code %s (imported by %s)", cmd, dep, strings.Join(importers(t, cmd, dep), ", "))
			}
		}
	}
}

// importers lists the packages in cmd's build that import pkg directly.
func importers(t *testing.T, cmd, pkg string) []string {
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, cmd).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", cmd, err, stderrOf(err))
	}
	var by []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && slices.Contains(f[1:], pkg) {
			by = append(by, f[0])
		}
	}
	return by
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
