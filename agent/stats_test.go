package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
)

const p3 = "+15551230003"

// pane returns the stats pane as drawn by View: the left column from the
// "─ Stats" rule down, trailing blanks trimmed.
func pane(t *testing.T, m *Model) []string {
	t.Helper()
	lines := strings.Split(plain(m), "\n")
	var out []string
	in := false
	for _, l := range lines[1 : 1+m.bodyHeight()] {
		left := strings.TrimRight(ansi.Truncate(l, m.leftWidth(), ""), " ")
		if strings.HasPrefix(left, m.st.g.hbar+" Stats") {
			in = true
		}
		if in {
			out = append(out, left)
		}
	}
	if !in {
		t.Fatalf("no stats pane in the view:\n%s", plain(m))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func requireLines(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("stats pane:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func custStats(phone, product string, cats map[string]int64, viewed ...string) protocol.Frame {
	return protocol.Frame{Type: protocol.TypeStats, Phone: phone, Product: product, Categories: cats, Viewed: viewed}
}

var testTitles = map[string]string{"3": "Full HD camcorder", "5": "Bluetooth speaker", "7": "Compact camera"}

const rule = "─ Stats ──────────────────" // 26 cells: the left column at 80 columns

// (a) The pane follows the selected conversation, whatever frame came last,
// and says so when the selected customer has no browsing data.
func TestStatsFollowSelectedCustomer(t *testing.T) {
	f := newFixture(t, false)
	f.update(catalogMsg{titles: testTitles})
	assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
	assign(f, p2, msg("b1", p2, protocol.In, "hi", time.Minute))
	assign(f, p3, msg("c1", p3, protocol.In, "hey", time.Minute))
	f.frame(custStats(p1, "3", map[string]int64{"Players": 1, "Cameras": 2}, "3", "7"))
	f.frame(custStats(p2, "5", map[string]int64{"Audio": 4}, "5")) // the last frame is not p1's

	p1Pane := []string{
		rule,
		"+15551230001 viewed",
		"  Full HD camcorder",
		"    also: Cameras 2, Play…",
		"  Compact camera",
	}
	requireLines(t, pane(t, f.m), p1Pane)

	f.key("tab")
	requireLines(t, pane(t, f.m), []string{rule, "+15551230002 viewed", "  Bluetooth speaker", "    also: Audio 4"})

	f.key("tab")
	requireLines(t, pane(t, f.m), []string{rule, "+15551230003", "no browsing data yet"})

	// A newer frame for p2 while p3 is selected changes nothing on screen,
	// and replaces p2's data rather than adding to it.
	f.frame(custStats(p2, "7", nil, "7", "5"))
	requireLines(t, pane(t, f.m), []string{rule, "+15551230003", "no browsing data yet"})
	f.key("shift+tab")
	requireLines(t, pane(t, f.m), []string{rule, "+15551230002 viewed", "  Compact camera", "  Bluetooth speaker"})

	f.key("shift+tab")
	requireLines(t, pane(t, f.m), p1Pane)

	// The customer's data outlives the conversation's release and shows
	// again if it comes back.
	f.frame(protocol.Frame{Type: protocol.TypeReleased, Phone: p1})
	assign(f, p1, msg("a2", p1, protocol.In, "back again", 0))
	for f.m.selected().phone != p1 {
		f.key("tab")
	}
	requireLines(t, pane(t, f.m), p1Pane)
}

func TestStatsMissingData(t *testing.T) {
	top := protocol.Frame{Type: protocol.TypeStats, Top: []protocol.TopEntry{{Product: "3", Title: "Full HD camcorder", Count: 42}}}
	tests := []struct {
		name   string
		conv   bool
		frames []protocol.Frame
		want   []string
	}{
		{"nothing", false, nil, []string{rule, "no navigation stats yet"}},
		{"conversation without data", true, nil, []string{rule, "+15551230001", "no browsing data yet"}},
		{"conversation without data, top list", true, []protocol.Frame{top},
			[]string{rule, "+15551230001", "no browsing data yet", "Top products", " 1. Full HD camcorder   42"}},
		{"top list only", false, []protocol.Frame{top}, []string{rule, "Top products", " 1. Full HD camcorder   42"}},
		{"another customer's data", true, []protocol.Frame{custStats(p2, "3", nil, "3")},
			[]string{rule, "+15551230001", "no browsing data yet"}},
		{"product stats without a customer are ignored", true,
			[]protocol.Frame{{Type: protocol.TypeStats, Product: "3", Categories: map[string]int64{"Cameras": 1}}},
			[]string{rule, "+15551230001", "no browsing data yet"}},
		{"bad phone is ignored", true, []protocol.Frame{custStats("not-a-phone", "3", nil, "3")},
			[]string{rule, "+15551230001", "no browsing data yet"}},
		{"nothing viewed", true, []protocol.Frame{custStats(p1, "", nil)},
			[]string{rule, "+15551230001", "nothing viewed recently"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, false)
			if tc.conv {
				assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
			}
			for _, fr := range tc.frames {
				f.frame(fr)
			}
			requireLines(t, pane(t, f.m), tc.want)
		})
	}
}

// (b) One top entry per line: rank and count right-aligned, the title cut
// to the room between them; as many entries as the pane holds.
func TestTopListOnePerLine(t *testing.T) {
	var top []protocol.TopEntry
	for i := range 20 {
		top = append(top, protocol.TopEntry{Product: fmt.Sprint(i), Title: fmt.Sprintf("Product number %d with a long title", i), Count: int64(1234 - i*60)})
	}
	top[1].Title = "" // unknown title: the id
	top[2].Title = "Caméra 📷 HD"
	for _, size := range [][2]int{{80, 24}, {120, 40}, {60, 14}, {200, 50}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			f := newFixture(t, false)
			f.update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
			f.frame(protocol.Frame{Type: protocol.TypeStats, Top: top})
			w := f.m.leftWidth()
			_, statsH := f.m.leftSplit(f.m.bodyHeight())
			got := pane(t, f.m)
			if got[1] != "Top products" {
				t.Fatalf("no header:\n%s", strings.Join(got, "\n"))
			}
			entries := got[2:]
			if want := min(len(top), statsH-2); len(entries) != want {
				t.Fatalf("%d entries in a pane of %d lines, want %d:\n%s", len(entries), statsH, want, strings.Join(got, "\n"))
			}
			for i, l := range entries {
				if lw := ansi.StringWidth(l); lw != w {
					t.Errorf("entry %d is %d cells, want %d: %q", i, lw, w, l)
				}
				if !strings.HasPrefix(l, fmt.Sprintf(" %2d. ", i+1)) {
					t.Errorf("entry %d does not start with its rank: %q", i, l)
				}
				if !strings.HasSuffix(l, fmt.Sprintf(" %4d", top[i].Count)) {
					t.Errorf("entry %d does not end with its count: %q", i, l)
				}
			}
			if !strings.HasPrefix(entries[1], "  2. #1 ") {
				t.Errorf("entry without a title: %q", entries[1])
			}
			if !strings.Contains(entries[2], "Caméra 📷") {
				t.Errorf("wide characters lost: %q", entries[2])
			}
			if w < 45 && !strings.Contains(entries[0], "…") {
				t.Errorf("long title not cut with an ellipsis: %q", entries[0])
			}
		})
	}
	t.Run("exact at 80 columns", func(t *testing.T) {
		f := newFixture(t, false)
		f.frame(protocol.Frame{Type: protocol.TypeStats, Top: top[:3]})
		requireLines(t, pane(t, f.m), []string{
			rule,
			"Top products",
			" 1. Product number 0… 1234",
			" 2. #1                1174",
			" 3. Caméra 📷 HD      1114",
		})
	})
	t.Run("an empty list clears it", func(t *testing.T) {
		f := newFixture(t, false)
		f.frame(protocol.Frame{Type: protocol.TypeStats, Top: top[:3]})
		var empty protocol.Frame
		if err := json.Unmarshal([]byte(`{"type":"stats","top":[]}`), &empty); err != nil {
			t.Fatal(err)
		}
		f.frame(empty)
		if got := strings.Join(pane(t, f.m), "\n"); strings.Contains(got, "Product number") {
			t.Errorf("the expired list is still shown:\n%s", got)
		}
	})
	t.Run("too narrow for columns", func(t *testing.T) {
		f := newFixture(t, true)
		f.frame(protocol.Frame{Type: protocol.TypeStats, Top: top[:3]})
		for _, l := range f.m.topLines(9, 3) {
			if lw := ansi.StringWidth(l); lw > 9 {
				t.Errorf("line %q is %d cells", l, lw)
			}
		}
	})
	t.Run("ascii ellipsis", func(t *testing.T) {
		f := newFixture(t, true)
		f.frame(protocol.Frame{Type: protocol.TypeStats, Top: top[:1]})
		if got := f.m.topLines(26, 1); got[0] != " 1. Product number 0~ 1234" {
			t.Errorf("ascii line %q", got[0])
		}
	})
}

// (c) Categories by count, highest first, ties by name.
func TestCategoriesSortedByCount(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]int64
		want string
	}{
		{"empty", nil, ""},
		{"one", map[string]int64{"Cameras": 2}, "Cameras 2"},
		{"by count", map[string]int64{"Players": 1, "Cameras": 2, "TVs": 7}, "TVs 7, Cameras 2, Players 1"},
		{"ties by name", map[string]int64{"b": 2, "a": 2, "C": 5, "d": 1, "A": 2}, "C 5, A 2, a 2, b 2, d 1"},
		{"hostile names cleaned", map[string]int64{"\x1b[31mRed": 3, "Tab\there": 1}, "\uFFFD[31mRed 3, Tab here 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := catsText(sortCats(tc.in)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("on screen", func(t *testing.T) {
		f := newFixture(t, false)
		f.update(tea.WindowSizeMsg{Width: 120, Height: 24})
		assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
		f.frame(custStats(p1, "3", map[string]int64{"Players": 1, "Cameras": 2, "Audio": 2, "TVs": 9}, "3"))
		if v := f.view(); !strings.Contains(v, "also: TVs 9, Audio 2, Cameras 2") {
			t.Fatalf("categories not sorted on screen:\n%s", v)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		many := map[string]int64{}
		for i := range 3 * maxCats {
			many[fmt.Sprintf("c%04d", i)] = int64(i)
		}
		got := sortCats(many)
		if len(got) != maxCats || got[0].name != fmt.Sprintf("c%04d", 3*maxCats-1) {
			t.Fatalf("kept %d, first %q", len(got), got[0].name)
		}
	})
}

// (d) Viewed products by title: from the catalog, else from the top list,
// else the id.
func TestViewedByTitle(t *testing.T) {
	tests := []struct {
		name    string
		catalog *catalogMsg
		top     []protocol.TopEntry
		want    []string
	}{
		{"catalog", &catalogMsg{titles: testTitles}, nil,
			[]string{"  Full HD camcorder", "  Compact camera", "  #99"}},
		{"no catalog: ids", nil, nil, []string{"  #3", "  #7", "  #99"}},
		{"catalog failed: ids", &catalogMsg{err: fmt.Errorf("503")}, nil, []string{"  #3", "  #7", "  #99"}},
		{"top list fills titles", nil, []protocol.TopEntry{{Product: "7", Title: "Compact camera", Count: 3}},
			[]string{"  #3", "  Compact camera", "  #99"}},
		{"hostile title cleaned", &catalogMsg{titles: map[string]string{"3": cleanTitle("Cam\x1b]0;pwned\x07")}}, nil,
			[]string{"  Cam\uFFFD]0;pwned\uFFFD", "  #7", "  #99"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, false)
			if tc.catalog != nil {
				f.update(*tc.catalog)
			}
			if tc.top != nil {
				f.frame(protocol.Frame{Type: protocol.TypeStats, Top: tc.top})
			}
			assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
			f.frame(custStats(p1, "", nil, "3", "7", "99"))
			got := pane(t, f.m)
			if got[1] != "+15551230001 viewed" || !slices.Equal(got[2:5], tc.want) {
				t.Fatalf("pane:\n%s\nwant viewed:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// A long viewed list is cut with a count of what is left, the newest
// product and its categories first; the top list keeps a header and an
// entry.
func TestViewedListFitsThePane(t *testing.T) {
	f := newFixture(t, false)
	f.update(catalogMsg{titles: testTitles})
	for _, p := range []string{p1, p2, p3, "+15551230004"} { // four conversations leave the pane 6 lines
		assign(f, p, msg("m"+p, p, protocol.In, "hello", time.Minute))
	}
	viewed := []string{"3", "7", "5", "10", "11", "12", "13", "14", "15", "16"}
	f.frame(custStats(p1, "3", map[string]int64{"Cameras": 2}, viewed...))
	requireLines(t, pane(t, f.m), []string{rule, "+15551230001 viewed", "  Full HD camcorder", "    also: Cameras 2", "  Compact camera", "  +8 more"})

	f.frame(protocol.Frame{Type: protocol.TypeStats, Top: []protocol.TopEntry{{Product: "3", Title: "Full HD camcorder", Count: 42}, {Product: "7", Count: 9}}})
	requireLines(t, pane(t, f.m), []string{rule, "+15551230001 viewed", "  Full HD camcorder", "  +9 more", "Top products", " 1. Full HD camcorder   42"})

	f.update(tea.WindowSizeMsg{Width: 80, Height: 60}) // room for everything
	got := pane(t, f.m)
	if len(got) != 1+1+len(viewed)+1+1+2 || got[len(got)-1] != " 2. Compact camera       9" {
		t.Fatalf("tall pane:\n%s", strings.Join(got, "\n"))
	}
}

func TestStatsPaneInBoundsAtEverySize(t *testing.T) {
	f := newFixture(t, false)
	f.update(catalogMsg{titles: map[string]string{"3": strings.Repeat("Very long product title ", 10)}})
	assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
	f.frame(custStats(p1, "3", map[string]int64{strings.Repeat("Category", 10): 99}, "3", "4", "5"))
	f.frame(protocol.Frame{Type: protocol.TypeStats, Top: []protocol.TopEntry{{Product: "3", Title: strings.Repeat("x", 300), Count: 1 << 40}}})
	for _, w := range []int{1, 5, 10, 20, 26, 36} {
		for h := range 12 {
			lines := f.m.statsPane(w, h)
			if len(lines) > h {
				t.Errorf("%dx%d: %d lines", w, h, len(lines))
			}
			for _, l := range lines {
				if lw := ansi.StringWidth(l); lw > w {
					t.Errorf("%dx%d: line %q is %d cells", w, h, l, lw)
				}
			}
		}
	}
	for _, size := range [][2]int{{80, 24}, {120, 40}, {40, 12}, {200, 10}, {80, 60}} {
		f.update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		lines := strings.Split(f.view(), "\n")
		if len(lines) != size[1] {
			t.Errorf("%dx%d: %d lines", size[0], size[1], len(lines))
		}
		for i, l := range lines {
			if lw := ansi.StringWidth(l); lw > size[0] {
				t.Errorf("%dx%d: line %d is %d wide", size[0], size[1], i, lw)
			}
		}
	}
}

func TestCustomerStatsBounded(t *testing.T) {
	f := newFixture(t, false)
	assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
	f.frame(custStats(p1, "3", nil, "3"))
	for i := range maxCustomers + 10 {
		f.frame(custStats(fmt.Sprintf("+1666%07d", i), "3", nil, "3"))
	}
	if n := len(f.m.nav.customers); n > maxCustomers {
		t.Fatalf("%d customers kept, at most %d", n, maxCustomers)
	}
	if f.m.nav.customers[p1] == nil {
		t.Fatal("the stats of a customer with a conversation were dropped")
	}
	long := make([]string, 3*maxViewed)
	for i := range long {
		long[i] = fmt.Sprint(i)
	}
	f.frame(custStats(p1, "0", nil, long...))
	if n := len(f.m.nav.customers[p1].viewed); n != maxViewed {
		t.Fatalf("%d viewed kept", n)
	}
}

// The catalog is asked for on every connect (not twice at once), and again
// for an unknown product once catalogRetry has passed since the last try.
func TestCatalogFetchTriggers(t *testing.T) {
	f := newFixture(t, false)
	f.m.cfg.CatalogURL = "http://127.0.0.1:1/products" // never requested: commands are inspected, not run
	connected := func() tea.Cmd {
		_, cmd := f.m.Update(EventMsg(wsclient.Event{Kind: wsclient.Connected}))
		return cmd
	}
	if connected() == nil || !f.m.nav.fetching {
		t.Fatal("connect did not fetch the catalog")
	}
	if connected() != nil {
		t.Fatal("a second fetch while one is in flight")
	}
	f.update(catalogMsg{err: fmt.Errorf("connection refused")})
	if f.m.nav.fetching {
		t.Fatal("still fetching after the answer")
	}
	stats := func(at time.Duration, fr protocol.Frame) tea.Cmd {
		*f.now = t0.Add(at)
		_, cmd := f.m.Update(EventMsg(wsclient.Event{Kind: wsclient.Received, Frame: fr}))
		return cmd
	}
	// (the fixture's clock is t0: the failed fetch started at t0)
	if cmd := stats(30*time.Second, custStats(p1, "3", nil, "3")); cmd != nil {
		t.Fatal("refetched before catalogRetry")
	}
	if cmd := stats(61*time.Second, custStats(p1, "3", nil, "3")); cmd == nil {
		t.Fatal("no refetch for an unknown product after catalogRetry")
	}
	f.update(catalogMsg{titles: map[string]string{"3": "Full HD camcorder"}})
	if cmd := stats(200*time.Second, custStats(p1, "3", nil, "3")); cmd != nil {
		t.Fatal("refetched although every product is known")
	}
	if cmd := stats(300*time.Second, protocol.Frame{Type: protocol.TypeStats, Top: []protocol.TopEntry{{Product: "8", Count: 1}}}); cmd == nil {
		t.Fatal("no refetch for an untitled top entry")
	}
	f.update(catalogMsg{titles: map[string]string{}})
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Disconnected}))
	if cmd := stats(900*time.Second, custStats(p1, "9", nil, "9")); cmd != nil {
		t.Fatal("fetched while disconnected")
	}
	f.m.cfg.CatalogURL = ""
	if connected() != nil {
		t.Fatal("fetched without a catalog URL")
	}
}
