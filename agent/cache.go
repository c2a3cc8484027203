package agent

import (
	"fmt"

	"charm.land/bubbles/v2/textarea"
)

// cachedView keeps the last drawing of a part of the screen that changes
// far less often than frames are drawn (every second for relative times):
// the composer, whose Bubbles v2 View costs about half of a frame, and the
// help line. It is redrawn when its key, everything the drawing depends
// on, changes.
type cachedView struct {
	key  string
	view string
	ok   bool
}

func (c *cachedView) get(key string, draw func() string) string {
	if !c.ok || c.key != key {
		c.key, c.view, c.ok = key, draw(), true
	}
	return c.view
}

// inputKey is what the composer's drawing depends on: its text, the
// cursor (which scrolls it), its size and focus.
func inputKey(t *textarea.Model) string {
	return fmt.Sprintf("%d:%d:%d:%d:%v:%s", t.Width(), t.Height(), t.Line(), t.Column(), t.Focused(), t.Value())
}
