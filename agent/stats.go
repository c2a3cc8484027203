package agent

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Bounds on what the client keeps from stats frames (the node sends far
// less: a top-N, ten viewed products, a few categories).
const (
	maxTop       = 100  // top-list entries kept
	maxViewed    = 50   // viewed products kept per customer
	maxCats      = 100  // categories kept per customer
	maxCustomers = 1000 // customers kept; past it, those without a conversation go
	maxTitle     = 256  // bytes of a product title kept (nav.MaxTitleLen)
	// catalogRetry is how long after a fetch a product id missing from the
	// titles triggers another one: a failed fetch is retried, and products
	// added to the catalog later get their titles, without polling.
	catalogRetry = time.Minute
)

// customerStats is what the node last sent about one customer's browsing:
// the products viewed recently (newest first) and the co-view categories of
// product (the newest one), sorted for display when the frame arrives so
// that View does not sort.
type customerStats struct {
	product string
	viewed  []string
	cats    []catCount
}

type catCount struct {
	name  string // cleaned for the screen
	count int64
}

// navStats is the client's copy of the navigation analytics.
type navStats struct {
	top       []protocol.TopEntry       // latest top list, titles cleaned
	customers map[string]*customerStats // phone → latest frame for that customer
	titles    map[string]string         // product id → cleaned title (catalog and top list)

	fetching  bool      // a catalog request is in flight
	fetchedAt time.Time // when the last catalog request started
}

func newNavStats() navStats {
	return navStats{customers: make(map[string]*customerStats), titles: make(map[string]string)}
}

// sortCats orders categories by count, highest first, ties by name, so
// that when the line is cut it is the least viewed that are lost.
func sortCats(m map[string]int64) []catCount {
	out := make([]catCount, 0, len(m))
	for k, v := range m {
		out = append(out, catCount{name: clean(k, false), count: v})
	}
	slices.SortFunc(out, func(a, b catCount) int {
		if c := cmp.Compare(b.count, a.count); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	if len(out) > maxCats {
		out = out[:maxCats]
	}
	return out
}

// cleanTitle makes a product title from outside safe and bounded.
func cleanTitle(t string) string {
	if len(t) > maxTitle {
		t = strings.ToValidUTF8(t[:maxTitle], "")
	}
	return clean(t, false)
}

// handleStats stores a stats frame: a top list (no phone) or one customer's
// browsing (phone). It returns a catalog fetch when the frame names
// products whose titles are unknown and the last fetch is old enough.
func (m *Model) handleStats(f protocol.Frame) tea.Cmd {
	ns := &m.nav
	var ids []string
	switch {
	case f.Phone != "":
		if _, err := protocol.NormalizeAddress(f.Phone); err != nil {
			m.log.Warn("stats frame with a bad phone", "err", err)
			return nil
		}
		cs := &customerStats{product: f.Product, cats: sortCats(f.Categories)}
		cs.viewed = slices.Clone(f.Viewed[:min(len(f.Viewed), maxViewed)])
		if _, ok := ns.customers[f.Phone]; !ok && len(ns.customers) >= maxCustomers {
			for p := range ns.customers {
				if _, c := m.find(p); c == nil {
					delete(ns.customers, p)
				}
			}
			if _, c := m.find(f.Phone); c == nil && len(ns.customers) >= maxCustomers {
				return nil // full of customers on screen: a stranger's data waits
			}
		}
		ns.customers[f.Phone] = cs
		ids = cs.viewed
		if cs.product != "" {
			ids = append(ids[:len(ids):len(ids)], cs.product)
		}
	case f.Top != nil: // "top":[] (the list emptied: its views left the window) clears it
		top := slices.Clone(f.Top[:min(len(f.Top), maxTop)])
		for i := range top {
			if top[i].Title != "" {
				top[i].Title = cleanTitle(top[i].Title)
				ns.titles[top[i].Product] = top[i].Title
			} else {
				ids = append(ids, top[i].Product)
			}
		}
		ns.top = top
	default:
		// A product's stats without a customer: nothing on screen uses it.
		return nil
	}
	for _, id := range ids {
		if _, ok := ns.titles[id]; !ok {
			if m.conn.kind == wsclient.Connected && !ns.fetching && m.cfg.Now().Sub(ns.fetchedAt) >= catalogRetry {
				return m.fetchCatalog()
			}
			break
		}
	}
	return nil
}

// productName is the title of product id, or "#id" when the catalog does
// not know it (or could not be fetched).
func (m *Model) productName(id string) string {
	if t, ok := m.nav.titles[id]; ok && t != "" {
		return t
	}
	return "#" + clean(id, false)
}

// statsPane shows, under a rule, the browsing of the selected
// conversation's customer and the shop's top products:
//
//	─ Stats ──────────────────
//	+15551230001 viewed
//	  Full HD camcorder
//	    also: Cameras 2, Players 1
//	  DVD player with surround…
//	Top products
//	 1. Full HD camcorder   42
//	 2. #7                   9
//
// "also" is what customers who viewed the newest product also viewed, by
// category. The customer's section has priority for lines; the top list
// takes the rest. Every line is cut to w cells, and at most h are returned.
func (m *Model) statsPane(w, h int) []string {
	if h <= 0 || w <= 0 {
		return nil
	}
	g := m.st.g
	lines := make([]string, 0, h)
	lines = append(lines, m.st.sep.Render(g.hbar+" ")+m.st.title.Render("Stats")+m.st.sep.Render(" "+strings.Repeat(g.hbar, max(w-8, 0))))
	avail := h - 1
	c := m.selected()
	if c == nil && len(m.nav.top) == 0 {
		lines = append(lines, m.st.dim.Render("no navigation stats yet"))
		return clip(lines, w, h, m.st.g.ellipsis)
	}
	custWant := 0
	var cs *customerStats
	if c != nil {
		cs = m.nav.customers[c.phone]
		custWant = customerWant(cs)
	}
	topWant := 0
	if len(m.nav.top) > 0 {
		topWant = 1 + len(m.nav.top)
	}
	// The customer first, but leave the top list its header and two
	// entries when it would otherwise be squeezed out; a header alone is
	// noise, so it then goes entirely.
	custN := min(custWant, max(avail-min(topWant, 3), min(custWant, 3)), avail)
	topN := min(topWant, avail-custN)
	if topN == 1 {
		topN, custN = 0, min(custWant, avail)
	}
	if c != nil && custN > 0 {
		lines = append(lines, m.customerLines(c.phone, cs, w, custN)...)
	}
	if topN > 0 {
		lines = append(lines, m.st.title.Render("Top products"))
		lines = append(lines, m.topLines(w, topN-1)...)
	}
	return clip(lines, w, h, m.st.g.ellipsis)
}

// customerView is the list of a customer's section: the viewed products
// (newest first, with the co-viewed product first if the node named one
// that is not among them) and the index of the one the categories belong
// to (-1: no categories line).
func customerView(cs *customerStats) (viewed []string, alsoAt int) {
	viewed = cs.viewed
	if cs.product != "" && !slices.Contains(viewed, cs.product) {
		viewed = append([]string{cs.product}, viewed...)
	}
	alsoAt = -1
	if len(cs.cats) > 0 {
		alsoAt = slices.Index(viewed, cs.product)
	}
	return viewed, alsoAt
}

// customerWant is how many lines a customer's section would like: a header,
// then a line per viewed product and one for the categories; a header and
// one line that says there is nothing when cs is nil or empty.
func customerWant(cs *customerStats) int {
	if cs == nil {
		return 2
	}
	viewed, alsoAt := customerView(cs)
	if len(viewed) == 0 {
		return 2
	}
	n := 1 + len(viewed)
	if alsoAt >= 0 {
		n++
	}
	return n
}

// customerLines renders a customer's section in at most n lines (n >= 1).
// When the viewed list does not fit, its last line says how many more
// there are; the newest product and its categories come first.
func (m *Model) customerLines(phone string, cs *customerStats, w, n int) []string {
	g := m.st.g
	head := m.st.title.Render(shownAddr(phone))
	if cs == nil {
		return append([]string{head}, m.st.dim.Render("no browsing data yet"))[:min(n, 2)]
	}
	viewed, alsoAt := customerView(cs)
	if len(viewed) == 0 {
		return append([]string{head}, m.st.dim.Render("nothing viewed recently"))[:min(n, 2)]
	}
	out := make([]string, 0, n)
	out = append(out, head+m.st.dim.Render(" viewed"))
	room, cut := n-1, customerWant(cs) > n
	if cut && room > 1 {
		room-- // the last line becomes "+k more"
	} else {
		cut = false // with one line, the newest product beats a count
	}
	shown := 0
	for i, id := range viewed {
		if len(out)-1 >= room {
			break
		}
		out = append(out, "  "+ansiTrunc(m.productName(id), w-2, g.ellipsis))
		shown++
		if i == alsoAt && len(out)-1 < room {
			out = append(out, m.st.dim.Render(ansiTrunc("    also: "+catsText(cs.cats), w, g.ellipsis)))
		}
	}
	if cut && shown < len(viewed) {
		out = append(out, m.st.dim.Render(fmt.Sprintf("  +%d more", len(viewed)-shown)))
	}
	return out
}

func catsText(cats []catCount) string {
	var b strings.Builder
	for i, c := range cats {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.name)
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(c.count, 10))
	}
	return b.String()
}

// topLines renders up to n entries of the top list, one per line: the rank
// right-aligned, the title cut to the room left, the count right-aligned at
// the right edge.
//
//	Top products
//	  1. Full HD camcorder    42
//	 10. DVD player with su…   3
func (m *Model) topLines(w, n int) []string {
	top := m.nav.top[:min(n, len(m.nav.top))]
	rankW := len(strconv.Itoa(len(m.nav.top)))
	var maxCount int64
	for _, e := range m.nav.top {
		maxCount = max(maxCount, e.Count)
	}
	countW := len(strconv.FormatInt(maxCount, 10))
	titleW := w - 1 - rankW - 2 - 1 - countW // " 1. " title " 42"
	out := make([]string, 0, len(top))
	for i, e := range top {
		rank := fmt.Sprintf(" %*d. ", rankW, i+1)
		name := e.Title
		if name == "" {
			name = m.productName(e.Product)
		}
		if titleW < 4 { // too narrow for columns: one cut line
			out = append(out, ansiTrunc(fmt.Sprintf("%s%s %d", rank, name, e.Count), w, m.st.g.ellipsis))
			continue
		}
		out = append(out, rank+m.fit(ansiTrunc(name, titleW, m.st.g.ellipsis), titleW)+fmt.Sprintf(" %*d", countW, e.Count))
	}
	return out
}

// clip cuts every line to w cells, marking the cut with tail, and keeps at
// most h lines.
func clip(lines []string, w, h int, tail string) []string {
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, tail)
		}
	}
	return lines
}
