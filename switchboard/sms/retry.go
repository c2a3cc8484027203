package sms

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff says how often and how patiently a send is retried.
type Backoff struct {
	// Initial is the wait after the first failed attempt. Must be > 0.
	Initial time.Duration
	// Max caps every wait, jitter included. Must be >= Initial.
	Max time.Duration
	// Attempts is the total number of attempts, the first included. Values
	// below 1 mean 1.
	Attempts int
	// Jitter spreads each wait uniformly over ±Jitter of its nominal value
	// (0.2 = ±20%) so that many senders failing together do not retry in
	// lockstep. 0 means exact waits; must be in [0, 1].
	Jitter float64
	// Rand returns a number in [0, 1). nil means math/rand/v2.Float64.
	// Tests inject a fixed function to make delays exact.
	Rand func() float64
}

// DefaultBackoff is the retry policy for agent replies: 6 attempts over
// roughly 15 seconds (0.5s, 1s, 2s, 4s, 8s between them, ±20%), never more
// than 30s between two attempts. Copy it and change fields; do not modify it.
var DefaultBackoff = Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Attempts: 6, Jitter: 0.2}

// Validate reports a policy that cannot work, naming the field.
func (b Backoff) Validate() error {
	switch {
	case b.Initial <= 0:
		return fmt.Errorf("sms: backoff: Initial must be > 0, got %v", b.Initial)
	case b.Max < b.Initial:
		return fmt.Errorf("sms: backoff: Max (%v) must be >= Initial (%v)", b.Max, b.Initial)
	case b.Jitter < 0 || b.Jitter > 1:
		return fmt.Errorf("sms: backoff: Jitter must be in [0, 1], got %v", b.Jitter)
	}
	return nil
}

// Delay is the wait after failed attempt number attempt (1-based): Initial
// doubled for each further attempt, capped at Max, then spread by Jitter and
// capped at Max again, so the result is always in [0, Max].
func (b Backoff) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if b.Initial <= 0 {
		return 0
	}
	d := b.Initial
	// Double step by step instead of shifting so that large attempt numbers
	// cannot overflow.
	for i := 1; i < attempt && (b.Max <= 0 || d < b.Max); i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	if b.Jitter > 0 {
		r := rand.Float64
		if b.Rand != nil {
			r = b.Rand
		}
		f := 1 + b.Jitter*(2*r()-1)
		d = time.Duration(float64(d) * f)
		if b.Max > 0 && d > b.Max {
			d = b.Max
		}
		if d < 0 {
			d = 0
		}
	}
	return d
}

// Sleep waits for d or until ctx is done, whichever comes first, and returns
// ctx.Err() in the second case. It is the default sleep of Deliver.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
