package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The binaries the end-to-end tests run, built once per test run (not
// once per test) into one directory that TestMain removes.
var bins struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// binaries returns the switchboard and agent binaries of this checkout.
func binaries(t *testing.T) (node, agent string) {
	t.Helper()
	bins.once.Do(func() {
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			bins.err = err
			return
		}
		if bins.dir, bins.err = os.MkdirTemp("", "switchboard-e2e-"); bins.err != nil {
			return
		}
		for name, pkg := range map[string]string{"switchboard": "./cmd/switchboard", "agent": "./cmd/agent"} {
			c := exec.Command("go", "build", "-o", filepath.Join(bins.dir, name), pkg)
			c.Dir = filepath.Dir(strings.TrimSpace(string(root)))
			if out, err := c.CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("build %s: %w\n%s", pkg, err, out)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return filepath.Join(bins.dir, "switchboard"), filepath.Join(bins.dir, "agent")
}
