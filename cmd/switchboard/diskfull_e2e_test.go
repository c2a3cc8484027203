package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// readyz returns /readyz's status and body.
func readyz(t *testing.T, p *proc) (int, string) {
	t.Helper()
	resp, err := http.Get(p.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// diskFull fills the disk under a node's data directory while webhooks
// arrive at via: the node must refuse with 503 (never 200 for what it did
// not store) and report not ready with the reason, then, once space is
// free, be ready again by itself; every webhook answered 200 is stored,
// and Twilio's retries of the refused ones are stored too.
func diskFull(t *testing.T, full, via *proc, disk string, post func(sid, phone, body string) int) {
	const phone = "+15558880001"
	body := strings.Repeat("x", 1500)
	acked := map[string]bool{}
	var refused []string
	send := func(sid string) {
		switch code := post(sid, phone, body); code {
		case 200:
			acked[sid] = true
		case 503:
			refused = append(refused, sid)
		default:
			t.Fatalf("webhook %s: %d, want 200 or 503", sid, code)
		}
	}
	for i := range 5 {
		send(fmt.Sprintf("SMdf%d", i))
	}
	filler := sbt.FillDisk(t, disk)
	// On the full node, until a few are refused; through another node, a
	// few hundred, which the full node fails to apply.
	limit := 2000
	if full != via {
		limit = 300
	}
	for i := 5; i < limit && len(refused) < 3; i++ {
		send(fmt.Sprintf("SMdf%d", i))
	}
	sbt.WaitFor(t, wait, "not ready on a full disk", func() bool {
		code, body := readyz(t, full)
		return code == 503 && strings.Contains(body, "no space left on device")
	})
	if full == via && len(refused) < 3 {
		t.Fatalf("only %d webhooks refused on a full disk", len(refused))
	}
	if code, body := readyz(t, full); code != 503 {
		t.Fatalf("/readyz on a full disk: %d %s", code, body)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	sbt.WaitFor(t, wait, "ready again after space was freed, without a restart", func() bool {
		code, _ := readyz(t, full)
		return code == 200
	})
	for _, sid := range refused { // Twilio retries a 503
		if code := post(sid, phone, body); code != 200 {
			t.Fatalf("retry of %s after recovery: %d", sid, code)
		}
		acked[sid] = true
	}
	sbt.WaitFor(t, wait, "every acknowledged webhook stored", func() bool {
		return len(conversationMessages(t, full, phone)) == len(acked)
	})
	if full.cmd.ProcessState != nil {
		t.Fatal("the node exited")
	}
	t.Logf("%d webhooks acknowledged, %d refused with 503 while the disk was full and retried", len(acked), len(refused))
}

func TestDiskFullRecovers(t *testing.T) {
	disk := sbt.SmallDisk(t, 16<<20)
	fake := twiliotestServer(t)
	p := start(t, sbt.FreePort(t), filepath.Join(disk, "data"), fake.URL())
	diskFull(t, p, p, disk, func(sid, phone, body string) int {
		code, _ := sbt.PostForm(t, p.base, "", "/sms/twilio", authToken, sbt.InboundForm(sid, phone, from, body))
		return code
	})
}

// Two nodes: n1's disk fills while webhooks reach n2, so n1 fails while
// applying the log; it reports not ready, recovers by itself, and ends
// with every message n2 acknowledged.
func TestClusterDiskFullRecovers(t *testing.T) {
	c := newClusterRun(t)
	disk := sbt.SmallDisk(t, 16<<20)
	c.dirs["n1"] = filepath.Join(disk, "data")
	c.ports["n1"] = sbt.FreePort(t)
	n1 := c.node("n1")
	n2 := c.node("n2")
	diskFull(t, n1, n2, disk, n2.smsSigned)
	requireEqualConversations(t, []string{"+15558880001"}, n1, n2)
}
