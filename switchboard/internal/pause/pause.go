// Package pause waits for a duration or until a context ends: the one
// sleep every switchboard package uses, so that no wait outlives a
// shutdown.
package pause

import (
	"context"
	"time"
)

// For waits d or until ctx ends; it reports whether d passed.
func For(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
