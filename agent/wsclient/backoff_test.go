package wsclient

import (
	"testing"
	"time"
)

func TestBackoffCappedWithJitter(t *testing.T) {
	for _, jitter := range []struct {
		name string
		fn   func(int64) int64
	}{{"low", func(int64) int64 { return 0 }}, {"high", func(n int64) int64 { return n - 1 }}} {
		t.Run(jitter.name, func(t *testing.T) {
			c, err := New(Options{URL: "ws://127.0.0.1:1/agent", Token: "t", MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Jitter: jitter.fn})
			if err != nil {
				t.Fatal(err)
			}
			wantFull := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
			for i, full := range wantFull {
				full *= time.Millisecond
				got := c.backoff(i + 1)
				if got < full/2 || got >= full {
					t.Errorf("attempt %d: %v not in [%v, %v)", i+1, got, full/2, full)
				}
			}
		})
	}
}

// The default backoff never exceeds 5 s, so an agent is back soon after
// the node is.
func TestDefaultBackoffCappedAtFiveSeconds(t *testing.T) {
	c, err := New(Options{URL: "ws://127.0.0.1:1/agent", Token: "t", Jitter: func(n int64) int64 { return n - 1 }})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 20; n++ {
		if d := c.backoff(n); d >= 5*time.Second {
			t.Fatalf("attempt %d waits %v, want < 5s", n, d)
		}
	}
	if d := c.backoff(20); d < 4*time.Second {
		t.Fatalf("attempt 20 waits %v, want the cap's upper half", d)
	}
}
