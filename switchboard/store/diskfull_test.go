package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// A full disk makes writes fail and the store not ready; once space is
// free it recovers by itself, without a restart, and everything it
// acknowledged is there, also after a reopen.
func TestDiskFullRecovers(t *testing.T) {
	dir := sbt.SmallDisk(t, 8<<20)
	opts := testOptions(t)
	opts.Dir = filepath.Join(dir, "db")
	s := openStore(t, opts)
	ctx := context.Background()
	var acked []string
	text := strings.Repeat("x", 4000)
	for i := range 20 {
		m, _ := mustInbound(t, s, Inbound{Sid: fmt.Sprintf("SMa%d", i), Phone: ph1, Text: text})
		acked = append(acked, m.ID)
	}
	filler := sbt.FillDisk(t, dir)
	failed := 0
	for i := 0; i < 2000 && failed < 3; i++ {
		m, _, err := s.AppendInbound(ctx, Inbound{Sid: fmt.Sprintf("SMb%d", i), Phone: ph1, Text: text})
		if err != nil {
			failed++
			continue
		}
		acked = append(acked, m.ID)
	}
	if failed == 0 {
		t.Fatal("no write failed on a full disk")
	}
	err := s.Ready()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Ready on a full disk = %v, want ErrUnavailable naming ENOSPC", err)
	}
	if _, _, err := s.AppendInbound(ctx, Inbound{Sid: "SMstill", Phone: ph1, Text: "x"}); err == nil {
		t.Fatal("a write succeeded while the disk is still full")
	}
	if list, err := s.Conversation(ph1); err != nil || len(list) < len(acked) {
		t.Fatalf("reads while failing: %d messages, %v", len(list), err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	sbt.WaitFor(t, 10*time.Second, "store ready after space was freed", func() bool { return s.Ready() == nil })
	m, _ := mustInbound(t, s, Inbound{Sid: "SMafter", Phone: ph1, Text: "after"})
	acked = append(acked, m.ID)
	check := func(s *Store) {
		t.Helper()
		for _, id := range acked {
			if _, err := s.Message(id); err != nil {
				t.Errorf("acknowledged %s: %v", id, err)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openStore(t, opts))
}
