package switchboard

import (
	"testing"
	"time"
)

// A flood penalty keeps one agent out until its time, and no one else.
func TestPenalties(t *testing.T) {
	var p penalties
	now := time.Unix(1_700_000_000, 0)
	if d := p.left("mallory", now); d != 0 {
		t.Fatalf("no penalty yet: %v", d)
	}
	p.add("mallory", now.Add(floodPenalty))
	for _, c := range []struct {
		agent string
		at    time.Duration
		want  time.Duration
	}{
		{"mallory", 0, floodPenalty},
		{"bob", 0, 0},
		{"mallory", floodPenalty - time.Millisecond, time.Millisecond},
		{"mallory", floodPenalty, 0},
		{"mallory", 0, 0}, // forgotten once over
	} {
		if d := p.left(c.agent, now.Add(c.at)); d != c.want {
			t.Errorf("%s at +%v: %v left, want %v", c.agent, c.at, d, c.want)
		}
	}
}
