package transform

import (
	"context"
	"iter"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRelTimePhrases(t *testing.T) {
	utc := time.UTC
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, utc)
	rt, err := NewRelTime(RelTimeOptions{Location: utc})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		age  time.Duration
		want string
	}{
		{-5 * time.Second, "just now"},
		{0, "just now"},
		{9*time.Second + 999*time.Millisecond, "just now"},
		{10 * time.Second, "10 seconds ago"},
		{45 * time.Second, "45 seconds ago"},
		{59*time.Second + 999*time.Millisecond, "59 seconds ago"},
		{time.Minute, "a minute ago"},
		{2*time.Minute - time.Millisecond, "a minute ago"},
		{2 * time.Minute, "2 minutes ago"},
		{59*time.Minute + 59*time.Second, "59 minutes ago"},
		{time.Hour, "an hour ago"},
		{2*time.Hour - time.Second, "an hour ago"},
		{2 * time.Hour, "2 hours ago"},
		{3 * time.Hour, "3 hours ago"},
		{24*time.Hour - time.Second, "23 hours ago"},
		{24 * time.Hour, "yesterday"},
		{48*time.Hour - time.Second, "yesterday"},
		{48 * time.Hour, "Mar 8"},
		{80 * 24 * time.Hour, "Dec 20, 2025"},
	}
	for _, tc := range tests {
		t.Run(tc.age.String(), func(t *testing.T) {
			if got := rt.Phrase(now.Add(-tc.age), now); got != tc.want {
				t.Fatalf("Phrase(now-%v) = %q, want %q", tc.age, got, tc.want)
			}
		})
	}
}

func TestRelTimeFormat(t *testing.T) {
	tests := []struct {
		format, want string
		wantErr      bool
	}{
		{"", "45 seconds ago", false},
		{"vor %s", "vor 45 seconds", false},
		{"%s", "45 seconds", false},
		{"no verb", "", true},
		{"%s %s", "", true},
		{"%d ago", "", true},
		{"100%% %s", "", true},
	}
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			rt, err := NewRelTime(RelTimeOptions{Format: tc.format})
			if (err != nil) != tc.wantErr {
				t.Fatalf("NewRelTime(%q) error = %v, want error %v", tc.format, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got := rt.Phrase(now.Add(-45*time.Second), now); got != tc.want {
				t.Fatalf("Phrase = %q, want %q", got, tc.want)
			}
			// Short phrases ignore the format.
			if got := rt.Phrase(now, now); got != "just now" {
				t.Fatalf("Phrase(now) = %q", got)
			}
		})
	}
}

// TestSentimentReference pins VADER compound scores of reference sentences
// (printed once from govader and copied here) and the marks they map to.
func TestSentimentReference(t *testing.T) {
	a, err := NewAnalyzer(AnalyzerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text     string
		compound float64
		mark     Mark
	}{
		{"I hate this, it is the worst service ever!!!", -0.8650, MarkDevil},
		{"I am a bit disappointed", -0.4767, MarkUnhappy},
		{"This is not good", -0.3412, MarkUnhappy},
		{"meh", -0.0772, MarkUnhappy},
		{"The package arrived today.", 0, MarkHappy},
		{"ok", 0.2960, MarkHappy},
		{"Thanks, that works", 0.4404, MarkHappy},
		{"Thank you so much, you are amazing! :)", 0.8622, MarkWink},
		{"I LOVE it", 0.7125, MarkWink},                                    // ALL CAPS among lower case
		{"not bad at all", 0.4310, MarkHappy},                              // negation
		{"the bomb kind of good", -0.0772, MarkUnhappy},                    // "kind of" and an idiom word
		{"Thanks 😀", 0.6597, MarkWink},                                     // an emoji's description is scored
		{"not happy 😞 the screen is cracked 💔", -0.5490, MarkDevil},        // emoji with negation
		{"Can you ship to 🇫🇷? My sister lives there 🙂", 0.4033, MarkHappy}, // a flag (two runes) is not described
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			got := a.Score(tc.text)
			if math.Abs(got.Compound-tc.compound) > 1e-4 {
				t.Errorf("compound = %.4f, want %.4f", got.Compound, tc.compound)
			}
			if got.Mark != tc.mark {
				t.Errorf("mark = %v, want %v", got.Mark, tc.mark)
			}
		})
	}
}

func TestMarkForThresholds(t *testing.T) {
	tests := []struct {
		c    float64
		want Mark
	}{
		{-1, MarkDevil}, {-0.5, MarkDevil}, {-0.4999, MarkUnhappy}, {-0.05, MarkUnhappy},
		{-0.0499, MarkHappy}, {0, MarkHappy}, {0.4999, MarkHappy}, {0.5, MarkWink}, {1, MarkWink},
	}
	for _, tc := range tests {
		if got := MarkFor(tc.c); got != tc.want {
			t.Errorf("MarkFor(%v) = %v, want %v", tc.c, got, tc.want)
		}
	}
	for m, want := range map[Mark][2]string{MarkDevil: {"😈", ">:("}, MarkUnhappy: {"🙁", ":("}, MarkHappy: {"🙂", ":)"}, MarkWink: {"😉", ";)"}} {
		if m.Emoji() != want[0] || m.ASCII() != want[1] {
			t.Errorf("%v: emoji %q ascii %q", m, m.Emoji(), m.ASCII())
		}
	}
}

func TestCap(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is two bytes: never cut inside it
		{"héllo", 3, "hé"},
		{"😈😈", 5, "😈"},
		{"😈", 3, ""},
	}
	for _, tc := range tests {
		if got := Cap(tc.s, tc.n); got != tc.want {
			t.Errorf("Cap(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestScoreCapsHostileInput(t *testing.T) {
	a, _ := NewAnalyzer(AnalyzerOptions{MaxBytes: 16})
	long := "I love it " + strings.Repeat("terrible awful ", 10000)
	start := time.Now()
	got := a.Score(long)
	if got.Mark != MarkWink && got.Mark != MarkHappy {
		t.Fatalf("only the first 16 bytes should count, got %+v", got)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("scoring a capped text took %v", d)
	}
	if _, err := NewAnalyzer(AnalyzerOptions{MaxBytes: -1}); err == nil {
		t.Fatal("negative MaxBytes accepted")
	}
}

func msgs(n int) []protocol.Message {
	out := make([]protocol.Message, n)
	for i := range out {
		out[i] = protocol.Message{ID: string(rune('a' + i%26)), Text: "thanks", Received: int64(1000 * i)}
	}
	return out
}

func TestPipeline(t *testing.T) {
	a, _ := NewAnalyzer(AnalyzerOptions{})
	got := Annotations(a, msgs(3))
	if len(got) != 3 {
		t.Fatalf("len = %d", len(got))
	}
	for i, g := range got {
		if !g.Time.Equal(time.UnixMilli(int64(1000 * i))) {
			t.Errorf("item %d time %v", i, g.Time)
		}
		if g.Sentiment.Mark != MarkHappy || g.Sentiment.Compound <= 0 {
			t.Errorf("item %d sentiment %+v", i, g.Sentiment)
		}
	}
	// Re-rendering the time does not touch the sentiment: Since is pure.
	if p := got[0].Since(time.UnixMilli(46_000)); p != "46 seconds ago" {
		t.Errorf("Since = %q", p)
	}

	double := Map(func(a Annotated) Annotated { a.Message.Text += a.Message.Text; return a })
	p := Pipeline(double, double)
	out := Accumulate(nil, p(FromSlice(got)))
	if out[0].Message.Text != "thanksthanksthanksthanks" {
		t.Errorf("pipeline text %q", out[0].Message.Text)
	}
}

func TestEarlyStopStopsUpstream(t *testing.T) {
	pulled := 0
	src := func(yield func(protocol.Message) bool) {
		for _, m := range msgs(100) {
			pulled++
			if !yield(m) {
				return
			}
		}
	}
	a, _ := NewAnalyzer(AnalyzerOptions{})
	n := 0
	for range Then(RelativeTime(), Sentiment(a))(src) {
		n++
		if n == 5 {
			break
		}
	}
	if pulled != 5 {
		t.Fatalf("source produced %d items for 5 consumed: no backpressure", pulled)
	}
}

func TestCancellation(t *testing.T) {
	t.Run("WithContext", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var seen []int
		for v := range WithContext[int](ctx)(FromSlice([]int{1, 2, 3, 4, 5})) {
			seen = append(seen, v)
			if v == 2 {
				cancel()
			}
		}
		if !slices.Equal(seen, []int{1, 2}) {
			t.Fatalf("seen %v, want [1 2]", seen)
		}
		if got := Accumulate(nil, WithContext[int](ctx)(FromSlice([]int{1}))); len(got) != 0 {
			t.Fatalf("cancelled stream produced %v", got)
		}
	})
	t.Run("FromChan", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := make(chan int)
		done := make(chan []int)
		go func() { done <- Accumulate(nil, FromChan(ctx, ch)) }()
		ch <- 1
		ch <- 2
		cancel()
		select {
		case got := <-done:
			if !slices.Equal(got, []int{1, 2}) {
				t.Fatalf("got %v", got)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("FromChan did not stop on cancel")
		}
	})
	t.Run("FromChanClosed", func(t *testing.T) {
		ch := make(chan int, 2)
		ch <- 7
		close(ch)
		if got := Accumulate(nil, FromChan(context.Background(), ch)); !slices.Equal(got, []int{7}) {
			t.Fatalf("got %v", got)
		}
	})
}

var _ iter.Seq[int] = FromSlice([]int(nil))
