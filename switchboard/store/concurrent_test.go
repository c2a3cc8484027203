package store

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

func TestConcurrentAppends(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const (
		workers = 16
		each    = 40
		dupSids = 10
		refs    = 5
	)
	phones := []string{"+15551000000", "+15551000001", "+15551000002", "+15551000003"}
	const shared = "+15552000000"

	var (
		mu        sync.Mutex
		firstDup  = map[string]int{}    // dup Sid → answers with duplicate=false
		idOfSid   = map[string]string{} // every Sid → id answered
		idOfRef   = map[string]string{}
		newRefs   int
		errs      []error
		wg        sync.WaitGroup
		recordErr = func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				sid := fmt.Sprintf("w%02d-%03d", w, i)
				m, dup, err := s.AppendInbound(ctx, Inbound{Sid: sid, Phone: phones[w%len(phones)], Text: sid})
				if err != nil || dup {
					recordErr(fmt.Errorf("%s: dup=%v err=%v", sid, dup, err))
					return
				}
				mu.Lock()
				idOfSid[sid] = m.ID
				mu.Unlock()
				if i < dupSids { // every worker sends the same dup-<i>
					d := fmt.Sprintf("dup-%d", i)
					m, dup, err := s.AppendInbound(ctx, Inbound{Sid: d, Phone: shared, Text: d})
					if err != nil {
						recordErr(err)
						return
					}
					mu.Lock()
					if !dup {
						firstDup[d]++
					}
					if prev, ok := idOfSid[d]; ok && prev != m.ID {
						errs = append(errs, fmt.Errorf("%s answered with ids %s and %s", d, prev, m.ID))
					}
					idOfSid[d] = m.ID
					mu.Unlock()
				}
				if i < refs { // two agents, each ref sent by eight workers
					agent, ref := fmt.Sprintf("agent%d", w%2), fmt.Sprintf("r%d", i)
					m, dup, err := s.AppendReply(ctx, Reply{Phone: shared, Agent: agent, Ref: ref, Text: ref})
					if err != nil {
						recordErr(err)
						return
					}
					mu.Lock()
					if !dup {
						newRefs++
					}
					k := agent + "/" + ref
					if prev, ok := idOfRef[k]; ok && prev != m.ID {
						errs = append(errs, fmt.Errorf("%s answered with ids %s and %s", k, prev, m.ID))
					}
					idOfRef[k] = m.ID
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for i := range dupSids {
		if n := firstDup[fmt.Sprintf("dup-%d", i)]; n != 1 {
			t.Errorf("dup-%d stored %d times by the answers", i, n)
		}
	}
	if newRefs != 2*refs {
		t.Errorf("%d replies answered as new, want %d", newRefs, 2*refs)
	}

	// Each worker's conversation: exactly its messages, each worker's in
	// the order it sent them, seqs without holes.
	for p, phone := range phones {
		list, err := s.Conversation(phone)
		if err != nil {
			t.Fatal(err)
		}
		if want := workers / len(phones) * each; len(list) != want {
			t.Fatalf("%s: %d messages, want %d", phone, len(list), want)
		}
		next := map[int]int{}
		for _, m := range list {
			var w, i int
			if _, err := fmt.Sscanf(m.Text, "w%d-%d", &w, &i); err != nil || w%len(phones) != p {
				t.Fatalf("%s holds %q", phone, m.Text)
			}
			if i != next[w] {
				t.Fatalf("%s: worker %d message %d comes where %d should", phone, w, i, next[w])
			}
			next[w]++
			if idOfSid[m.Text] != m.ID || m.Status != protocol.StatusReceived {
				t.Fatalf("%s: %+v, answered id %s", phone, m, idOfSid[m.Text])
			}
		}
	}
	list, _ := s.Conversation(shared)
	var in, out int
	for _, m := range list {
		if m.Direction == protocol.In {
			in++
		} else {
			out++
		}
	}
	if in != dupSids || out != 2*refs {
		t.Fatalf("shared conversation: %d inbound, %d replies; want %d, %d", in, out, dupSids, 2*refs)
	}
	if p, _ := s.Pending(); len(p) != 2*refs {
		t.Fatalf("pending %d, want %d", len(p), 2*refs)
	}
	// Five conversations waited once each, ten replies entered the outbox:
	// fifteen global seqs, each WaitSeq distinct.
	seen := map[uint64]bool{}
	if err := s.Conversations(func(c ConvState) error {
		if !c.Waiting || c.WaitSeq == 0 || c.WaitSeq > 15 || seen[c.WaitSeq] {
			return fmt.Errorf("state %+v", c)
		}
		seen[c.WaitSeq] = true
		return nil
	}); err != nil || len(seen) != 5 {
		t.Fatalf("conversation states: %v (%d)", err, len(seen))
	}
	ids := map[string]bool{}
	for _, id := range idOfSid {
		ids[id] = true
	}
	for _, id := range idOfRef {
		ids[id] = true
	}
	if want := workers*each + dupSids + 2*refs; len(ids) != want {
		t.Fatalf("%d distinct ids, want %d", len(ids), want)
	}
}

// The crash test re-executes the test binary as a child that appends
// concurrently and prints every acknowledged Sid; the parent SIGKILLs it
// mid-stream and checks that everything acknowledged survived, once.
const crashEnv = "SWITCHBOARD_STORE_CRASH_DIR"

const (
	crashWriters = 8
	crashPhones  = 4
)

func crashPhone(w int) string { return fmt.Sprintf("+1555300000%d", w%crashPhones) }

func TestCrashHelperProcess(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	s, err := Open(Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second) // in case the parent never kills us
	for w := range crashWriters {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				sid := fmt.Sprintf("w%d-%d", w, i)
				if _, _, err := s.AppendInbound(context.Background(), Inbound{Sid: sid, Phone: crashPhone(w), Text: sid}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				out.Lock()
				os.Stdout.WriteString(sid + "\n") // one write per line: a kill never splits it
				out.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(3)
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	cmd, stdout, stderr := startChild(t, "TestCrashHelperProcess", crashEnv+"="+dir)
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	const killAfter = 400 // acknowledgements
	acked := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	killed := false
	timer := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	for sc.Scan() {
		acked[sc.Text()] = true
		if len(acked) == killAfter && !killed {
			killed = true
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
		}
	}
	err := cmd.Wait()
	if !killed {
		t.Fatalf("child ended before %d acks (%d): %v\n%s", killAfter, len(acked), err, stderr.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
		t.Fatalf("child was not killed by a signal: %v\n%s", err, stderr.String())
	}
	t.Logf("%d acknowledged before and while the kill landed", len(acked))

	s := openStore(t, Options{Dir: dir})
	count := map[string]int{}
	for p := range crashPhones {
		phone := crashPhone(p)
		list, err := s.Conversation(phone)
		if err != nil {
			t.Fatal(err)
		}
		next := map[int]int{}
		for _, m := range list {
			count[m.Text]++
			var w, i int
			if _, err := fmt.Sscanf(m.Text, "w%d-%d", &w, &i); err != nil || crashPhone(w) != phone {
				t.Fatalf("%s holds %q", phone, m.Text)
			}
			// Writers append in order and wait for each answer, so each
			// writer's messages are a prefix of what it sent, in order.
			if i != next[w] {
				t.Fatalf("%s: writer %d message %d comes where %d should", phone, w, i, next[w])
			}
			next[w]++
		}
		// Seqs are contiguous: no hole, no overwrite.
		it := s.db.db.NewIterator(utilPrefix(convPrefix(phone)), nil)
		var seqs []uint64
		for it.Next() {
			n, _ := seqOfMsgKey(it.Key())
			seqs = append(seqs, n)
		}
		it.Release()
		for i, n := range seqs {
			if n != uint64(i+1) {
				t.Fatalf("%s: seqs %v", phone, seqs)
			}
		}
	}
	for sid := range acked {
		if count[sid] != 1 {
			t.Errorf("acknowledged %s stored %d times", sid, count[sid])
		}
	}
	for sid, n := range count {
		if n != 1 {
			t.Errorf("%s stored %d times", sid, n)
		}
	}
	// The Sid index survived with the messages: retries are duplicates, and
	// a new message continues each conversation.
	sids := slices.Sorted(maps.Keys(acked))
	for _, sid := range sids[:50] {
		if _, dup, err := s.AppendInbound(context.Background(), Inbound{Sid: sid, Phone: crashPhone(atoiW(sid)), Text: sid}); err != nil || !dup {
			t.Fatalf("retry of %s: dup=%v err=%v", sid, dup, err)
		}
	}
}

func atoiW(sid string) int {
	n, _ := strconv.Atoi(sid[1:strings.IndexByte(sid, '-')])
	return n
}
