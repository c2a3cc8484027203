package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
)

// The import crash test re-executes the test binary as a child that
// imports a state and stops in the writer before its killAt-th write; the
// parent SIGKILLs it there, reopens the store and imports again, as a node
// does that was killed while joining from a snapshot (no checkpoint yet:
// it loads the snapshot again).
const importCrashEnv = "SWITCHBOARD_STORE_IMPORT_CRASH" // dir, state file, killAt

func TestImportCrashHelperProcess(t *testing.T) {
	args := strings.Split(os.Getenv(importCrashEnv), ",")
	if len(args) != 3 {
		t.Skip("helper process for TestImportCrash")
	}
	fail := func(err error) { fmt.Fprintln(os.Stderr, err); os.Exit(2) }
	kvs, gseq, err := readKVs(args[1])
	if err != nil {
		fail(err)
	}
	killAt, _ := strconv.Atoi(args[2])
	writes := 0
	s, err := Open(Options{Dir: args[0], beforeCommit: func(int) error {
		if writes++; writes == killAt {
			os.Stdout.WriteString("importing\n")
			time.Sleep(20 * time.Second) // the parent kills us here
			os.Exit(3)
		}
		return nil
	}})
	if err != nil {
		fail(err)
	}
	if err := s.ImportState(WithoutSync(context.Background()), kvs, gseq); err != nil {
		fail(err)
	}
	fail(fmt.Errorf("the import ended after %d writes, before write %d", writes, killAt))
}

// TestImportCrash: a store killed in the middle of an import, in its
// state or in its index, holds part of it; importing again gives exactly
// what an import without a crash gives, search index included.
func TestImportCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	kvs, gseq := benchState(t, 20000)
	file := filepath.Join(t.TempDir(), "state")
	if err := writeKVs(file, kvs, gseq); err != nil {
		t.Fatal(err)
	}
	writes := 0
	clean := openStore(t, Options{Dir: t.TempDir(), beforeCommit: func(int) error { writes++; return nil }})
	importAll(t, clean, kvs, gseq)
	want := dump(t, clean)
	// Write 1 raises the sequence numbers, the state's come next, then the
	// index's (more of them), then the checkpoint: write 3 is in the state,
	// the one before the last import write in the index.
	t.Logf("%d writes", writes)
	for _, killAt := range []int{3, writes - 2} {
		t.Run(fmt.Sprint("write", killAt), func(t *testing.T) {
			dir := t.TempDir()
			killImport(t, dir, file, killAt)
			s := openStore(t, Options{Dir: dir})
			if cp, err := s.LoadCheckpoint(); err != nil || cp != nil {
				t.Fatalf("checkpoint after the crash: %q, %v", cp, err)
			}
			if got := dump(t, s); bytes.Equal(got, want) {
				t.Fatal("the killed import was complete: the kill came too late to test anything")
			}
			importAll(t, s, kvs, gseq)
			if got := dump(t, s); !bytes.Equal(got, want) {
				t.Fatalf("after the crash and a new import: %d bytes of keys and values, want %d", len(got), len(want))
			}
			if found, _, err := s.Search("message 19999", "", 10); err != nil || len(found) != 1 {
				t.Fatalf("search after the new import: %+v, %v", found, err)
			}
		})
	}
}

// killImport runs the helper process on dir and SIGKILLs it once it has
// stopped before write killAt.
func killImport(t *testing.T, dir, file string, killAt int) {
	t.Helper()
	cmd, stdout, stderr := startChild(t, "TestImportCrashHelperProcess", fmt.Sprintf("%s=%s,%s,%d", importCrashEnv, dir, file, killAt))
	timer := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	killed := false
	if sc := bufio.NewScanner(stdout); sc.Scan() && sc.Text() == "importing" {
		killed = cmd.Process.Kill() == nil // SIGKILL
	}
	err := cmd.Wait()
	if !killed {
		t.Fatalf("the child did not stop mid-import: %v\n%s", err, stderr.String())
	}
}

// importAll imports kvs as a node joining from a snapshot does: unsynced,
// then a synced checkpoint.
func importAll(t *testing.T, s *Store, kvs []KV, gseq uint64) {
	t.Helper()
	if err := s.ImportState(WithoutSync(context.Background()), kvs, gseq); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(context.Background(), nil, []byte(`{"offset":1}`)); err != nil {
		t.Fatal(err)
	}
}

// dump returns every key and value of s, in order.
func dump(t *testing.T, s *Store) []byte {
	t.Helper()
	var out []byte
	err := s.db.view(func(db *leveldb.DB) error {
		it := db.NewIterator(nil, nil)
		defer it.Release()
		for it.Next() {
			out = fmt.Appendf(out, "%q=%q\n", it.Key(), it.Value())
		}
		return it.Error()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImportStateIndexesAsWritten: a store that imports another's state
// holds exactly the other's keys, the search index included (built at
// import, from the messages, where the other wrote it with each message).
func TestImportStateIndexesAsWritten(t *testing.T) {
	a := newStore(t)
	texts := []string{"Where is my order?", "ORDER 66 — café crème", "東京 タワー 行きたい", "refund, refund, refund!", ""}
	for i := range 3000 {
		mustInbound(t, a, Inbound{Sid: fmt.Sprintf("SM%d", i), Phone: fmt.Sprintf("+1555000%04d", i%37), Text: fmt.Sprintf("%s %d", texts[i%len(texts)], i), Received: time.UnixMilli(int64(1000 + i%500))})
	}
	kvs, gseq := exportKVs(t, a)
	b := newStore(t)
	if err := b.ImportState(context.Background(), kvs, gseq); err != nil {
		t.Fatal(err)
	}
	want, got := strings.Split(string(dump(t, a)), "\n"), strings.Split(string(dump(t, b)), "\n")
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			t.Fatalf("key %d: imported %s, want %s", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d keys imported, want %d", len(got), len(want))
	}
}
