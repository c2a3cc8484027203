package loadgen

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard"
	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
	"github.com/switchboard/switchboard/switchboard/token"
)

// demoNode runs a real node in-process on dir, as the quick start's
// terminal 1 does; stop shuts it down (and is also a cleanup).
func demoNode(t *testing.T, dir string) (base string, stop func()) {
	t.Helper()
	o := switchboard.NewOptions()
	o.Addr = "127.0.0.1:0"
	o.DataDir = dir
	o.Node = "demo-test"
	o.Secret = testSecret
	o.StatsInterval = 0
	o.TwilioAccountSID, o.TwilioAuthToken, o.TwilioFrom = testAccount, testAuthToken, testFrom
	o.TwilioAPIURL = "http://127.0.0.1:9" // the test agent sends no replies
	n, err := switchboard.New(o, switchboard.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
	}
	t.Cleanup(stop)
	return "http://" + n.Addr().String(), stop
}

// demoAgent is the quick start's terminal 3: alice with a token of
// capacity 6, available.
func demoAgent(t *testing.T, base string) *sbt.Agent {
	t.Helper()
	tok, err := token.Issue([]byte(testSecret), "alice", 6, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a := sbt.DialAgent(t, "ws"+strings.TrimPrefix(base, "http")+"/agent", tok)
	a.Send(protocol.Frame{Type: protocol.TypeAvailable})
	return a
}

// demoRun is one `sbload -demo` against base, at a test's pace, while the
// agent's frames are collected: it returns the report, the story and the
// inbound messages the agent was shown, by id.
func demoRun(t *testing.T, base string, a *sbt.Agent, seen map[string]protocol.Message) (rep *Report, story string, fresh map[string]protocol.Message) {
	t.Helper()
	o := DemoOptions()
	o.Targets = []string{base}
	o.AccountSID, o.AuthToken, o.From = testAccount, testAuthToken, testFrom
	o.TwilioAddr, o.TwilioListener = "", listen(t)
	o.DemoPace = 0.05            // each customer texts every 150 to 500 ms
	o.Duration = 4 * time.Second // every customer texts several times, even on a busy machine
	o.Logger = quiet
	var out syncBuffer
	o.Progress = &out
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		rep *Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := r.Run(context.Background())
		done <- result{rep, err}
	}()
	fresh = map[string]protocol.Message{}
	take := func(f protocol.Frame) {
		if f.Type != protocol.TypeAssigned && f.Type != protocol.TypeUpdate {
			return
		}
		for _, m := range f.List {
			if _, old := seen[m.ID]; !old && m.Direction == protocol.In {
				seen[m.ID] = m
				fresh[m.ID] = m
			}
		}
	}
	for rep == nil {
		select {
		case res := <-done:
			if res.err != nil {
				t.Fatal(res.err)
			}
			rep = res.rep
		default:
			if f, ok := a.TryNext(100 * time.Millisecond); ok {
				take(f)
			}
		}
	}
	// Every acknowledged text reaches the agent: wait for the last ones.
	deadline := time.Now().Add(10 * time.Second)
	for int64(len(fresh)) < rep.Inbound.Acked && time.Now().Before(deadline) {
		if f, ok := a.TryNext(100 * time.Millisecond); ok {
			take(f)
		}
	}
	return rep, out.String(), fresh
}

// TestDemoRunsAgainAndAgain is the quick start three times in a row on one
// node, then once more after the documented reset: every run, alice (with
// the quick start's capacity 6) is shown every text of every one of the six
// customers, fresh, and nothing else: the same six conversations continue
// instead of new numbers piling up behind full slots.
func TestDemoRunsAgainAndAgain(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "switchboard-demo")
	base, stop := demoNode(t, dir)
	a := demoAgent(t, base)
	var want []string
	for i := range 6 {
		want = append(want, demoPhone(i))
	}
	valid := regexp.MustCompile(`^\+1[2-9]\d{2}555010\d$`)
	seen := map[string]protocol.Message{}
	for run := 1; run <= 3; run++ {
		rep, story, fresh := demoRun(t, base, a, seen)
		if rep.Inbound.Acked == 0 || rep.Inbound.Acked != rep.Inbound.Sent || !rep.OK() {
			t.Fatalf("run %d: report %+v", run, rep.Inbound)
		}
		if int64(len(fresh)) != rep.Inbound.Acked {
			t.Errorf("run %d: %d texts acknowledged, alice was shown %d of them", run, rep.Inbound.Acked, len(fresh))
		}
		var phones []string
		for _, m := range fresh {
			if !slices.Contains(phones, m.Phone) {
				phones = append(phones, m.Phone)
			}
		}
		slices.Sort(phones)
		if !slices.Equal(phones, want) {
			t.Errorf("run %d: alice got fresh texts from %v, want every demo customer %v", run, phones, want)
		}
		for _, name := range demoNames[:6] {
			if !strings.Contains(story, name+" ") {
				t.Errorf("run %d: the story never names %s:\n%s", run, name, story)
			}
		}
		for _, w := range []string{"Maya +14155550101", "capacity 6", "delete its data directory"} {
			if !strings.Contains(story, w) {
				t.Errorf("run %d: the story lacks %q:\n%s", run, w, story)
			}
		}
	}
	for _, m := range seen {
		if !valid.MatchString(m.Phone) || !slices.Contains(want, m.Phone) {
			t.Fatalf("alice was shown %s, not one of the six demo numbers", m.Phone)
		}
	}

	// Resetting the demo (README): stop the node, delete its data, start
	// it again. Alice's conversations come back empty of the old runs.
	stop()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	base, _ = demoNode(t, dir)
	a = demoAgent(t, base)
	after := map[string]protocol.Message{}
	rep, _, fresh := demoRun(t, base, a, after)
	if rep.Inbound.Acked == 0 || int64(len(fresh)) != rep.Inbound.Acked {
		t.Errorf("after the reset: %d texts acknowledged, alice was shown %d", rep.Inbound.Acked, len(fresh))
	}
	for id := range after {
		if _, old := seen[id]; old {
			t.Errorf("after the reset alice was shown %s from before it", id)
		}
	}
}
