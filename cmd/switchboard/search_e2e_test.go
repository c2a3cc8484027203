package main

import (
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

type searchBody struct {
	Words []string           `json:"words"`
	List  []protocol.Message `json:"list"`
	More  bool               `json:"more"`
}

func (p *proc) search(query string) searchBody {
	p.t.Helper()
	var b searchBody
	if code := sbt.GetJSON(p.t, p.base+"/search?"+query, admin, &b); code != 200 {
		p.t.Fatalf("GET /search?%s = %d", query, code)
	}
	return b
}

func bodies(list []protocol.Message) []string {
	var out []string
	for _, m := range list {
		out = append(out, m.Text)
	}
	return out
}

// TestSearchEndToEnd runs the real binary: GET /search and the agent's
// search frame find stored messages newest first, an agent only in its own
// conversations; after kill -9 the index is intact, and a data directory
// whose index is gone (as written by a version without it) is indexed again
// when the node opens it.
func TestSearchEndToEnd(t *testing.T) {
	fake := twiliotest.NewServer(account, authToken)
	defer fake.Close()
	port, dir := sbt.FreePort(t), t.TempDir()
	p := start(t, port, dir, fake.URL())
	const c1, c2 = "+15554440001", "+15554440002"
	alice := p.agent("alice", 1)
	p.sms("SMe2es1", c1, "Where is my parcel?")
	alice.Expect(protocol.TypeAssigned, phoneIs(c1), wait)
	p.sms("SMe2es2", c2, "parcel lost, refund please") // waits: alice is full
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "Your parcel left today", Ref: "r1"})
	alice.Expect(protocol.TypeAck, nil, wait)

	want := []string{"Your parcel left today", "parcel lost, refund please", "Where is my parcel?"}
	if got := p.search("q=PARCEL"); !slices.Equal(bodies(got.List), want) || got.More {
		t.Fatalf("search parcel = %+v, want %q", got, want)
	}
	if got := p.search("q=parcel&limit=1&before=" + url.QueryEscape(p.search("q=parcel").List[0].ID)); !slices.Equal(bodies(got.List), want[1:2]) || !got.More {
		t.Fatalf("page 2 = %+v", got)
	}
	if got := p.search("q=parcel+refund&phone=" + url.QueryEscape(c2)); !slices.Equal(bodies(got.List), want[1:2]) {
		t.Fatalf("in c2 = %+v", got)
	}
	if code := sbt.GetJSON(t, p.base+"/search?q=", admin, nil); code != 400 {
		t.Fatalf("empty query = %d, want 400", code)
	}
	alice.Send(protocol.Frame{Type: protocol.TypeSearch, Query: "parcel", Ref: "s1"})
	r := alice.Expect(protocol.TypeResults, nil, wait)
	if r.Ref != "s1" || !slices.Equal(bodies(r.List), []string{want[0], want[2]}) {
		t.Fatalf("alice's results = %+v, want only her conversation", r)
	}
	alice.Send(protocol.Frame{Type: protocol.TypeSearch, Query: "parcel", Phone: c2, Ref: "s2"})
	if e := alice.Expect(protocol.TypeError, nil, wait); e.Code != protocol.CodeNotAssigned || e.Ref != "s2" {
		t.Fatalf("search in another's conversation = %+v", e)
	}

	p.kill()
	p = start(t, port, dir, fake.URL())
	if got := p.search("q=parcel"); !slices.Equal(bodies(got.List), want) {
		t.Fatalf("after kill -9: %q, want %q", bodies(got.List), want)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done

	// Remove the index as a version without it would have left the
	// directory: the store's fw/ and fc/ keys and its g/search marker.
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b leveldb.Batch
	for _, prefix := range []string{"fw/", "fc/", "g/search"} {
		it := db.NewIterator(util.BytesPrefix([]byte(prefix)), nil)
		for it.Next() {
			b.Delete(slices.Clone(it.Key()))
		}
		it.Release()
	}
	if b.Len() == 0 {
		t.Fatal("no index keys found: the key layout changed")
	}
	if err := db.Write(&b, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	p = start(t, port, dir, fake.URL())
	if got := p.search("q=parcel"); !slices.Equal(bodies(got.List), want) {
		t.Fatalf("after the index was rebuilt: %q, want %q", bodies(got.List), want)
	}
	sbt.WaitFor(t, wait, "the rebuild logged", func() bool { return strings.Contains(p.logs.String(), "search index built") })
}

// TestClusterSearch: two processes on the real broker. A message accepted
// by n2 and a reply accepted by n1 are found on both nodes alike (each
// node indexes what it applies from the log), and an agent's search on
// either node covers only its own conversations.
func TestClusterSearch(t *testing.T) {
	c := newClusterRun(t)
	n1, n2 := c.node("n1"), c.node("n2")
	alice := n1.agent("alice", 1)
	bob := n2.agent("bob", 1)
	const c1 = "+15554440011"
	if code := n2.smsSigned("SMclusters1", c1, "Does the camera ship abroad?"); code != 200 {
		t.Fatalf("webhook = %d", code)
	}
	var owner *sbt.Agent
	sbt.WaitFor(t, wait, "c1 assigned", func() bool {
		if f, ok := alice.TryExpect(protocol.TypeAssigned, 10*time.Millisecond); ok && f.Phone == c1 {
			owner = alice
		} else if f, ok := bob.TryExpect(protocol.TypeAssigned, 10*time.Millisecond); ok && f.Phone == c1 {
			owner = bob
		}
		return owner != nil
	})
	other := bob
	if owner == bob {
		other = alice
	}
	owner.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "The camera ships everywhere", Ref: "r1"})
	owner.Expect(protocol.TypeAck, nil, wait)
	want := []string{"The camera ships everywhere", "Does the camera ship abroad?"}
	for _, p := range []*proc{n1, n2} {
		sbt.WaitFor(t, wait, "both messages found on "+p.base, func() bool { return slices.Equal(bodies(p.search("q=camera").List), want) })
	}
	owner.Send(protocol.Frame{Type: protocol.TypeSearch, Query: "camera ships", Ref: "s1"})
	if r := owner.Expect(protocol.TypeResults, nil, wait); !slices.Equal(bodies(r.List), want[:1]) {
		t.Fatalf("owner's results = %+v", r)
	}
	other.Send(protocol.Frame{Type: protocol.TypeSearch, Query: "camera", Ref: "s2"})
	if r := other.Expect(protocol.TypeResults, nil, wait); len(r.List) != 0 {
		t.Fatalf("the other agent found %+v", r.List)
	}
}
