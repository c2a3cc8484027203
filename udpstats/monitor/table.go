package monitor

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/udpstats"
)

// Table draws the nodes as a text table: one row per node sorted by name, a
// cluster total row, and a footer with what the listener received.
type Table struct {
	Columns []string // metric names without prefix
	// ANSI redraws in place (cursor home, clear) and greys out stale nodes;
	// off for -once, so the output can be piped.
	ANSI bool
	// StaleAfter greys out a node not heard from for this many of its
	// intervals. Zero: 3.
	StaleAfter int
	// Hint, when set, is shown under the footer (NoDataHint).
	Hint string
}

const (
	ansiHome  = "\x1b[H"
	ansiClear = "\x1b[J" // clear to end of screen
	ansiEOL   = "\x1b[K"
	ansiGrey  = "\x1b[90m"
	ansiBold  = "\x1b[1m"
	ansiReset = "\x1b[0m"
)

// Render writes one frame. now is the listener's clock.
//
// Columns: NODE, AGE (since the last datagram), LOST (datagrams missing
// from the node's sequence since the monitor started), then Columns:
// counters as a rate per second ("/s"), timings in milliseconds ("ms"),
// gauges as sent. TOTAL sums rates and gauges and takes the max of timings,
// over nodes that are not stale.
func (t *Table) Render(w io.Writer, nodes []udpstats.NodeState, now time.Time, st udpstats.AggregatorStats) {
	staleAfter := t.StaleAfter
	if staleAfter <= 0 {
		staleAfter = 3
	}
	types := map[string]string{}
	for _, n := range nodes {
		if n.Last != nil {
			for _, c := range t.Columns {
				if typ, ok := n.Last.Types[c]; ok {
					types[c] = typ
				}
			}
		}
	}
	header := []string{"NODE", "AGE", "LOST"}
	for _, c := range t.Columns {
		switch types[c] {
		case "c":
			c += "/s"
		case "ms", "h", "d":
			c += " ms"
		}
		header = append(header, c)
	}
	rows := [][]string{}
	stale := []bool{}
	totals := make([]float64, len(t.Columns))
	have := make([]bool, len(t.Columns))
	var totalLost uint64
	live := 0
	for _, n := range nodes {
		isStale := now.Sub(n.LastSeen) > time.Duration(staleAfter)*n.Interval
		row := []string{printable(n.Node), age(now.Sub(n.LastSeen)), strconv.FormatUint(n.Lost, 10)}
		for i, c := range t.Columns {
			v, ok := 0.0, false
			if n.Last != nil {
				v, ok = n.Last.Rate(c)
			}
			if !ok {
				row = append(row, "-")
				continue
			}
			row = append(row, num(v, types[c]))
			if isStale {
				continue
			}
			have[i] = true
			if types[c] == "ms" || types[c] == "h" || types[c] == "d" {
				totals[i] = max(totals[i], v)
			} else {
				totals[i] += v
			}
		}
		if !isStale {
			live++
			totalLost += n.Lost
		}
		rows = append(rows, row)
		stale = append(stale, isStale)
	}
	total := []string{fmt.Sprintf("TOTAL (%d)", live), "", strconv.FormatUint(totalLost, 10)}
	for i, c := range t.Columns {
		if have[i] {
			total = append(total, num(totals[i], types[c]))
		} else {
			total = append(total, "-")
		}
	}

	widths := make([]int, len(header))
	for _, r := range append(append([][]string{header}, rows...), total) {
		for i, cell := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell)) // as fmt pads
		}
	}
	var b strings.Builder
	line := func(cells []string, style string) {
		if t.ANSI && style != "" {
			b.WriteString(style)
		}
		for i, cell := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			if i == 0 {
				fmt.Fprintf(&b, "%-*s", widths[i], cell)
			} else {
				fmt.Fprintf(&b, "%*s", widths[i], cell)
			}
		}
		if t.ANSI {
			if style != "" {
				b.WriteString(ansiReset)
			}
			b.WriteString(ansiEOL)
		}
		b.WriteByte('\n')
	}
	if t.ANSI {
		b.WriteString(ansiHome)
	}
	line(header, ansiBold)
	for i, r := range rows {
		style := ""
		if stale[i] {
			style = ansiGrey
		}
		line(r, style)
	}
	line(total, ansiBold)
	fmt.Fprintf(&b, "datagrams %d  bad lines %d  bad datagrams %d  duplicates %d", st.Datagrams, st.BadLines, st.BadDatagrams, st.Duplicates)
	if t.Hint != "" {
		if t.ANSI {
			b.WriteString(ansiEOL)
		}
		b.WriteString("\n" + t.Hint)
	}
	if t.ANSI {
		b.WriteString(ansiEOL + "\n" + ansiClear)
	} else {
		b.WriteByte('\n')
	}
	io.WriteString(w, b.String())
}

// printable makes a name received from the network safe to print on a
// terminal: invalid UTF-8 and control characters (which could carry
// escape sequences that clear the screen or retitle the window) become '?'.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}

func age(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
	case d >= time.Minute:
		return d.Round(time.Second).String()
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
}

// maxNumWidth is the widest a number is written in fixed notation; beyond
// it (only garbage or a buggy sender gets there) it is written with an
// exponent, so one value cannot widen its column past the screen.
const maxNumWidth = 16

func num(v float64, typ string) string {
	var s string
	switch typ {
	case "c":
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case "ms", "h", "d":
		s = strconv.FormatFloat(v, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	}
	if len(s) > maxNumWidth {
		s = strconv.FormatFloat(v, 'g', 4, 64)
	}
	return s
}
