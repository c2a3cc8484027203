package agent

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// BenchmarkTimelineView renders a full 120×40 frame of a conversation of
// 10,000 messages (scrolled to the bottom, and scrolled half way back).
func BenchmarkTimelineView(b *testing.B) {
	for _, offset := range []int{0, 5000} {
		b.Run(fmt.Sprintf("offset=%d", offset), func(b *testing.B) {
			m, err := NewModel(Config{Conn: &recConn{}, Now: func() time.Time { return t0 }})
			if err != nil {
				b.Fatal(err)
			}
			m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
			list := make([]protocol.Message, 10_000)
			for i := range list {
				dir := protocol.In
				if i%3 == 2 {
					dir = protocol.Out
				}
				list[i] = protocol.Message{ID: fmt.Sprintf("m%05d", i), Phone: p1, Direction: dir, Status: protocol.StatusDelivered,
					Text:     fmt.Sprintf("Message %d: hi, I ordered the camcorder last week and it still has not arrived, can you check the tracking please?", i),
					Received: t0.Add(-time.Duration(10_000-i) * time.Minute).UnixMilli()}
			}
			m.handleFrame(protocol.Frame{Type: protocol.TypeAssigned, Phone: p1, List: list})
			m.convs[0].offset = offset
			b.ReportAllocs()
			for b.Loop() {
				m.now = m.now.Add(time.Second) // every frame re-renders the phrases
				_ = m.View()
			}
		})
	}
}

// BenchmarkEmptyView is the baseline: a frame with no conversation.
func BenchmarkEmptyView(b *testing.B) {
	m, err := NewModel(Config{Conn: &recConn{}, Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	for b.Loop() {
		_ = m.View()
	}
}

// BenchmarkStatsView renders a full 120×40 frame whose stats pane is full:
// a top list of 10, and a customer who viewed 10 products with 20
// co-viewed categories (titles from the catalog).
func BenchmarkStatsView(b *testing.B) {
	m, err := NewModel(Config{Conn: &recConn{}, Now: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	m.handleFrame(protocol.Frame{Type: protocol.TypeAssigned, Phone: p1, List: []protocol.Message{{ID: "m1", Phone: p1, Direction: protocol.In, Text: "Which camera is best?", Received: t0.UnixMilli()}}})
	titles := map[string]string{}
	var top []protocol.TopEntry
	var viewed []string
	cats := map[string]int64{}
	for i := range 20 {
		id := fmt.Sprint(i)
		titles[id] = fmt.Sprintf("Product %d with a rather long catalog title", i)
		cats[fmt.Sprintf("Category %d", i)] = int64(i % 7)
		if i < 10 {
			top = append(top, protocol.TopEntry{Product: id, Title: titles[id], Count: int64(1000 - i)})
			viewed = append(viewed, fmt.Sprint(10+i))
		}
	}
	m.Update(catalogMsg{titles: titles})
	m.handleFrame(protocol.Frame{Type: protocol.TypeStats, Top: top})
	m.handleFrame(protocol.Frame{Type: protocol.TypeStats, Phone: p1, Product: viewed[0], Categories: cats, Viewed: viewed})
	if v := m.render(); !strings.Contains(v, "Product 10 with") || !strings.Contains(v, "Top products") {
		b.Fatalf("stats pane not full:\n%s", v)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = m.View()
	}
}
