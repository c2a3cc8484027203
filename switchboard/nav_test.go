package switchboard

import (
	"io"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus/bustest"
	"github.com/switchboard/switchboard/switchboard/nav"
	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

func fastNav(o *Options, _ *Config) {
	o.Nav.Window = 10 * time.Second
	o.Nav.Resolution = 50 * time.Millisecond
	o.Nav.TopN = 3
}

func postNav(t *testing.T, base, body string) {
	t.Helper()
	resp, err := http.Post(base+"/nav", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /nav = %d %s", resp.StatusCode, b)
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// TestNavStatsReachTheAgent: a shop event carrying the customer's phone
// links the shop user to the SMS conversation; the agent who has it gets a
// stats frame with what the customer viewed, and every agent gets the top
// list.
func TestNavStatsReachTheAgent(t *testing.T) {
	h := startNode(t, fastNav)
	alice := h.agent("alice", 1)
	const phone = "+15551234567"
	h.sms("SMn1", phone, "does the camcorder do 4K?")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)

	postNav(t, h.base, `[{"user":"u-59c3","product":"2","type":"PRODUCT","phone":"+15551234567"},{"user":"u-59c3","product":"3","type":"PRODUCT"},{"user":"u-other","product":"3","type":"PRODUCT"},{"user":"u-other","product":"7","type":"PRODUCT"}]`)

	// The two frames come in either order; the customer's may come in
	// several steps while the batch is applied.
	var f, top protocol.Frame
	deadline := time.Now().Add(waitLong)
	for (f.Phone == "" || len(f.Viewed) < 2 || len(f.Categories) < 2) || len(top.Top) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("customer frame %+v, top frame %+v", f, top)
		}
		g := alice.Next(waitLong)
		switch {
		case g.Type != protocol.TypeStats:
		case len(g.Top) > 0:
			top = g
		case g.Phone == phone:
			f = g
		}
	}
	if f.Product != "3" || !reflect.DeepEqual(f.Viewed, []string{"3", "2"}) || !maps.Equal(f.Categories, map[string]int64{"Players": 1, "Phones": 1}) {
		t.Errorf("customer frame = %+v", f)
	}
	if want := []protocol.TopEntry{{Product: "3", Title: "Full HD camcorder", Count: 2}, {Product: "2", Title: "Media player with USB 2.0 input", Count: 1}, {Product: "7", Title: "Dual-core Android smartphone with 64 GB SD card", Count: 1}}; !reflect.DeepEqual(top.Top, want) {
		t.Errorf("top = %+v", top.Top)
	}
	// A second agent connecting later gets the current top list too.
	bob := h.agent("bob", 1)
	bob.Expect(protocol.TypeStats, func(f protocol.Frame) bool { return len(f.Top) == 3 }, waitLong)
	if got := getBody(t, h.base+"/products/3/stats"); got != `{"product":"3","categories":{"Phones":1,"Players":1}}` {
		t.Errorf("GET /products/3/stats = %s", got)
	}
}

// TestNavSurvivesRestart: counters and histories come back after a clean
// restart of the node on the same data directory.
func TestNavSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	withDir := func(o *Options, c *Config) { fastNav(o, c); o.DataDir = dir }
	h := startNode(t, withDir)
	postNav(t, h.base, `[{"user":"a","product":"2","type":"PRODUCT"},{"user":"a","product":"3","type":"PRODUCT"}]`)
	sbt.WaitFor(t, waitLong, "counted", func() bool { return h.node.nav.svc.Counters().Counted == 2 })
	if err := h.node.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	h2 := startNode(t, withDir)
	postNav(t, h2.base, `{"user":"a","product":"7","type":"PRODUCT"}`)
	sbt.WaitFor(t, waitLong, "counted after restart", func() bool { return h2.node.nav.svc.Counters().Counted == 1 })
	if got := getBody(t, h2.base+"/products/7/stats"); got != `{"product":"7","categories":{"Cameras":1,"Players":1}}` {
		t.Errorf("after restart GET /products/7/stats = %s", got)
	}
}

// TestNavTwoNodesRealBroker: two nodes on one RabbitMQ exchange; events
// POSTed to either node end in the same counters and the same top-N on both.
func TestNavTwoNodesRealBroker(t *testing.T) {
	url := bustest.AMQPURL(t)
	exchange := bustest.UniqueName(t, "nav")
	bustest.DeleteOnCleanup(t, url, func() ([]string, []string) { return BrokerNames(exchange) })
	dirs := map[string]string{"n1": t.TempDir(), "n2": t.TempDir()}
	node := func(name string) func(*Options, *Config) {
		return func(o *Options, c *Config) {
			fastNav(o, c)
			o.AMQPURL = url
			o.AMQPExchange = exchange
			o.Node = name
			o.DataDir = dirs[name]
		}
	}
	h1 := startNode(t, node("n1"))
	h2 := startNode(t, node("n2"))
	postNav(t, h1.base, `[{"user":"a","product":"2","type":"PRODUCT"},{"user":"a","product":"3","type":"PRODUCT"},{"user":"b","product":"3","type":"PRODUCT"}]`)
	postNav(t, h2.base, `[{"user":"b","product":"4","type":"PRODUCT"},{"user":"a","product":"4","type":"PRODUCT"},{"user":"c","product":"3","type":"PRODUCT"}]`)
	for _, h := range []*harness{h1, h2} {
		sbt.WaitFor(t, waitLong, "both nodes counted all events", func() bool { return h.node.nav.svc.Counters().Counted == 6 })
	}
	want := map[string]string{
		"2": `{"product":"2","categories":{"Cameras":2}}`,
		"3": `{"product":"3","categories":{"Cameras":2,"Players":1}}`,
		"4": `{"product":"4","categories":{"Cameras":2,"Players":1}}`,
	}
	for p, w := range want {
		for _, h := range []*harness{h1, h2} {
			if got := getBody(t, h.base+"/products/"+p+"/stats"); got != w {
				t.Errorf("%s: GET /products/%s/stats = %s, want %s", h.node.opts.Node, p, got, w)
			}
		}
	}
	// An event without a product only links a user to a phone: every node
	// learns the link, so the customer's agent sees the browsing wherever
	// it is connected.
	postNav(t, h1.base, `{"user":"a","type":"LOGIN","phone":"+15551230001"}`)
	for _, h := range []*harness{h1, h2} {
		sbt.WaitFor(t, waitLong, h.node.opts.Node+" linked the phone", func() bool {
			f, ok := h.node.nav.svc.Customer("+15551230001")
			return ok && len(f.Viewed) == 3
		})
	}
	const wantTop = `{"window":"10s","top":[{"product":"3","title":"Full HD camcorder","count":3},{"product":"4","title":"Waterproof HD camcorder","count":2},{"product":"2","title":"Media player with USB 2.0 input","count":1}]}`
	for _, h := range []*harness{h1, h2} {
		sbt.WaitFor(t, waitLong, h.node.opts.Node+" global top", func() bool { return getBody(t, h.base+"/stats/top") == wantTop })
	}
	// n2 leaves: n1's top falls back to its own share.
	if err := h2.node.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	const wantAlone = `{"window":"10s","top":[{"product":"3","title":"Full HD camcorder","count":2},{"product":"2","title":"Media player with USB 2.0 input","count":1}]}`
	sbt.WaitFor(t, waitLong, "n1 top after n2 left", func() bool { return getBody(t, h1.base+"/stats/top") == wantAlone })

	// While n2 is down, n1 takes more events; n2 restarts on its data and
	// resumes the stream after the last event its counters include.
	postNav(t, h1.base, `[{"user":"c","product":"2","type":"PRODUCT"},{"user":"d","product":"5","type":"PRODUCT"},{"user":"d","product":"3","type":"PRODUCT"}]`)
	h2 = startNode(t, node("n2"))
	sbt.WaitFor(t, waitLong, "n2 caught up", func() bool { return h2.node.nav.svc.Counters().Counted == 3 })
	for _, p := range []string{"2", "3", "4", "5"} {
		want := getBody(t, h1.base+"/products/"+p+"/stats")
		sbt.WaitFor(t, waitLong, "n2 counters of "+p, func() bool { return getBody(t, h2.base+"/products/"+p+"/stats") == want })
	}
	if got := getBody(t, h2.base+"/products/2/stats"); got != `{"product":"2","categories":{"Cameras":3}}` {
		t.Errorf("after catch-up GET /products/2/stats = %s", got)
	}
}

// TestImportProducts: `switchboard products import` fills the catalog of a
// stopped node; a node started on it then does not load the sample.
func TestImportProducts(t *testing.T) {
	dir := t.TempDir()
	n, err := ImportProducts(dir, strings.NewReader(`[{"id":"a1","title":"Alpha","category":"Tools","price":3}]`))
	if err != nil || n != 1 {
		t.Fatalf("import = %d, %v", n, err)
	}
	if _, err := ImportProducts(dir, strings.NewReader(`[{"id":"a.1"}]`)); err == nil {
		t.Error("bad catalog imported")
	}
	h := startNode(t, func(o *Options, c *Config) { o.DataDir = dir })
	if got := getBody(t, h.base+"/products"); got != `[{"id":"a1","title":"Alpha","category":"Tools","price":3}]` {
		t.Errorf("GET /products = %s", got)
	}
}

// TestNavCountsAReplacedStream: a node restarted on a nav stream that is not
// the one its stored offset is a position in (the broker lost it) counts
// the new stream from its start instead of skipping it as already counted.
func TestNavCountsAReplacedStream(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	dir := t.TempDir()
	node := func(o *Options, c *Config) { restartable(amqpURL, ex, "n1", dir, 0)(o, c); fastNav(o, c) }
	h := startNode(t, node)
	postNav(t, h.base, `[{"user":"a","product":"2","type":"PRODUCT"},{"user":"a","product":"3","type":"PRODUCT"},{"user":"b","product":"3","type":"PRODUCT"}]`)
	sbt.WaitFor(t, waitLong, "counted", func() bool { return h.node.nav.svc.Counters().Counted == 3 })
	stopNode(t, h)

	bustest.DeleteQueue(t, amqpURL, ex+"."+navStream)

	h = startNode(t, node)
	postNav(t, h.base, `[{"user":"c","product":"2","type":"PRODUCT"},{"user":"c","product":"7","type":"PRODUCT"}]`)
	sbt.WaitFor(t, waitLong, "the new stream counted", func() bool { return h.node.nav.svc.Counters().Counted == 2 })
	if got := getBody(t, h.base+"/products/2/stats"); got != `{"product":"2","categories":{"Cameras":1,"Phones":1}}` {
		t.Errorf("GET /products/2/stats = %s, want the counts from before (Cameras) and after (Phones)", got)
	}
	if off := h.node.nav.svc.StreamOffset(); off != 1 {
		t.Errorf("nav stream offset = %d, want 1 (the new stream's second entry)", off)
	}
}

// TestNavFollowsAStreamReplacedWhileRunning: a running node whose nav
// stream is deleted counts the new stream from its start, without a restart.
func TestNavFollowsAStreamReplacedWhileRunning(t *testing.T) {
	amqpURL, ex := clusterExchange(t)
	node := func(o *Options, c *Config) {
		restartable(amqpURL, ex, "n1", t.TempDir(), 50*time.Millisecond)(o, c)
		fastNav(o, c)
	}
	h := startNode(t, node)
	waitReady(t, h)
	postNav(t, h.base, `[{"user":"a","product":"2","type":"PRODUCT"},{"user":"a","product":"3","type":"PRODUCT"}]`)
	sbt.WaitFor(t, waitLong, "counted", func() bool { return h.node.nav.svc.Counters().Counted == 2 })

	bustest.DeleteQueue(t, amqpURL, ex+"."+navStream)
	bustest.DeclareStream(t, amqpURL, ex, ex+"."+navStream, nav.BindView, nav.BindLink)
	postNav(t, h.base, `[{"user":"c","product":"2","type":"PRODUCT"},{"user":"c","product":"7","type":"PRODUCT"}]`)
	sbt.WaitFor(t, waitLong, "the new stream counted", func() bool { return h.node.nav.svc.Counters().Counted == 4 })
	if got := getBody(t, h.base+"/products/2/stats"); got != `{"product":"2","categories":{"Cameras":1,"Phones":1}}` {
		t.Errorf("GET /products/2/stats = %s, want the counts from before (Cameras) and after (Phones)", got)
	}
	if off := h.node.nav.svc.StreamOffset(); off != 1 {
		t.Errorf("nav stream offset = %d, want 1 (the new stream's second entry)", off)
	}
	select {
	case err := <-h.node.Failed():
		t.Fatalf("the node failed: %v", err)
	default:
	}
}

// TestNavTopListEmptiesForAgents: when the last view leaves the window,
// GET /stats/top answers an empty list, and so must the agents: the ones
// connected get a stats frame with an empty top list, and one connecting
// afterwards is not sent the old list (it used to be, forever, and agents
// kept showing products nobody had viewed for hours).
func TestNavTopListEmptiesForAgents(t *testing.T) {
	h := startNode(t, func(o *Options, c *Config) {
		fastNav(o, c)
		o.Nav.Window = 500 * time.Millisecond
	})
	alice := h.agent("alice", 1)
	postNav(t, h.base, `{"user":"u-1","product":"3","type":"PRODUCT"}`)
	alice.Expect(protocol.TypeStats, func(f protocol.Frame) bool { return len(f.Top) == 1 }, waitLong)
	alice.Expect(protocol.TypeStats, func(f protocol.Frame) bool { return f.Phone == "" && f.Top != nil && len(f.Top) == 0 }, waitLong)
	if got := getBody(t, h.base+"/stats/top"); got != `{"window":"500ms","top":[]}` {
		t.Errorf("GET /stats/top = %s", got)
	}
	bob := h.agent("bob", 1)
	bob.ExpectNone(protocol.TypeStats, 500*time.Millisecond)
}

// TestNavLogsOneComponent: the nav service's log lines say component=nav
// once, not component=node component=nav.
func TestNavLogsOneComponent(t *testing.T) {
	var buf sbt.SyncBuffer
	startNode(t, func(o *Options, c *Config) {
		fastNav(o, c)
		c.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	})
	var line string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, "navigation state loaded") {
			line = l
		}
	}
	if line == "" || strings.Count(line, "component=") != 1 || !strings.Contains(line, "component=nav") || !strings.Contains(line, "node=test") {
		t.Fatalf("nav log line: %q", line)
	}
}
