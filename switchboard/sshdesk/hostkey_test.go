package sshdesk

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The host key is made once and kept: a second start (and a second node
// racing on the same directory) reads the same key.
func TestLoadHostKeyKeepsTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", HostKeyFile)
	first, err := LoadHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("host key mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := LoadHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.PublicKey().Marshal(), again.PublicKey().Marshal()) {
		t.Fatal("a second load made a new host key")
	}
	// Only the key is left behind, no temporary file.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("data directory holds %d files, want just the key", len(ents))
	}
	// createHostKey losing the race reads the winner's key.
	data, err := createHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	onDisk, _ := os.ReadFile(path)
	if !bytes.Equal(data, onDisk) {
		t.Fatal("a second create replaced the key")
	}
}

func TestLoadHostKeyRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), HostKeyFile)
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadHostKey(path); err == nil {
		t.Fatal("a garbage host key was accepted")
	}
	if b, _ := os.ReadFile(path); string(b) != "not a key" {
		t.Fatal("the garbage file was overwritten")
	}
}
