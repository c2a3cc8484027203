package agent

import (
	"fmt"
	"slices"
	"strings"
)

// statsPane shows the latest navigation stats frames: the rolling top of
// viewed products and the categories of the last product looked at.
// Navigation stats arrive from a later issue; until then it says so.
func (m *Model) statsPane(w, h int) []string {
	lines := []string{m.st.title.Render("Stats")}
	if m.top == nil && m.stats == nil {
		return append(lines, m.st.dim.Render("no navigation stats yet"))
	}
	if m.top != nil {
		var parts []string
		for i, e := range m.top.Top {
			name := e.Title
			if name == "" {
				name = "#" + e.Product
			}
			parts = append(parts, fmt.Sprintf("%d. %s (%d)", i+1, clean(name, false), e.Count))
		}
		lines = append(lines, "top: "+strings.Join(parts, ", "))
	}
	if s := m.stats; s != nil {
		cats := make([]string, 0, len(s.Categories))
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range s.Categories {
				if !yield(k) {
					return
				}
			}
		}) {
			cats = append(cats, fmt.Sprintf("%s %d", clean(k, false), s.Categories[k]))
		}
		line := "product " + clean(s.Product, false) + ": " + strings.Join(cats, ", ")
		lines = append(lines, line)
		if len(s.Viewed) > 0 {
			lines = append(lines, "viewed: "+clean(strings.Join(s.Viewed, ", "), false))
		}
	}
	for i := 1; i < len(lines); i++ {
		lines[i] = ansiTrunc(lines[i], w, m.st.g.ellipsis)
	}
	if len(lines) > h {
		lines = lines[:h]
	}
	return lines
}
