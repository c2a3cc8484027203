package agent

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// The composer reserves a few dozen lines, not bubbles' default, and
// still takes the longest SMS whole: 1,600 characters on 25 lines, pasted
// or typed with Shift+Enter, is sent as typed.
func TestComposerTakesTheLongestSMS(t *testing.T) {
	if c := newComposer(); c.MaxHeight != composerMaxLines || composerMaxLines > 64 {
		t.Fatalf("composer MaxHeight %d, want composerMaxLines (%d, a few dozen)", c.MaxHeight, composerMaxLines)
	}
	line := strings.Repeat("x", 63)
	long := strings.TrimSuffix(strings.Repeat(line+"\n", 25), "\n") // 25×63 + 24 = 1,599
	for _, how := range []string{"paste", "typed"} {
		f := newFixture(t, true)
		assign(f, p1, msg("m1", p1, protocol.In, "hi", time.Minute))
		if how == "paste" {
			f.update(tea.PasteMsg{Content: long})
		} else {
			for i, l := range strings.Split(long, "\n") {
				if i > 0 {
					f.key("shift+enter")
				}
				f.update(tea.PasteMsg{Content: l})
			}
		}
		f.key("enter")
		got := f.lastSent(t)
		if got.Type != protocol.TypeResponse || got.Message != long {
			t.Fatalf("%s: sent %d bytes (%q…), want the %d-byte reply whole", how, len(got.Message), got.Message[:min(len(got.Message), 40)], len(long))
		}
	}
}
