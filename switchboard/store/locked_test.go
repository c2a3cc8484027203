package store

import (
	"errors"
	"testing"
)

// TestOpenHeldDirectory: a directory another store has open is refused
// with ErrLocked, which names the cause, not "resource temporarily
// unavailable".
func TestOpenHeldDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(Options{Dir: dir})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}
