package transform

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestAnalyzerConcurrent scores from several goroutines at once and gets
// the scores of one goroutine (run with -race: govader's tables are shared).
func TestAnalyzerConcurrent(t *testing.T) {
	a, _ := NewAnalyzer(AnalyzerOptions{})
	texts := append(append([]string{}, smsCorpus...), emojiCorpus...)
	want := make([]Score, len(texts))
	for i, s := range texts {
		want[i] = a.Score(s)
	}
	done := make(chan []string)
	for g := range 4 {
		go func() {
			var bad []string
			for r := range 10 {
				for i := range texts {
					j := (i + g + r) % len(texts)
					if got := a.Score(texts[j]); got != want[j] {
						bad = append(bad, texts[j])
					}
				}
			}
			done <- bad
		}()
	}
	for range 4 {
		if bad := <-done; len(bad) > 0 {
			t.Errorf("concurrent scores differ for %q", bad)
		}
	}
}

// TestScoreCountsOnlyMaxBytes: what lies past MaxBytes does not change the
// score, and the cut never splits a rune.
func TestScoreCountsOnlyMaxBytes(t *testing.T) {
	a, _ := NewAnalyzer(AnalyzerOptions{MaxBytes: 20})
	head := "I love it so much 😍" // 22 bytes: the emoji straddles the cut
	got := a.Score(head + " but it is the worst, I hate it!!!")
	if want := a.Score("I love it so much "); got != want {
		t.Fatalf("Score = %+v, want the score of the first 18 bytes %+v", got, want)
	}
	if got.Mark != MarkWink {
		t.Fatalf("mark %v, want wink", got.Mark)
	}
}

// FuzzScore: customers send anything. Scoring never panics, gives a
// compound score in [-1, 1] with its mark, and depends only on the first
// MaxBytes bytes.
func FuzzScore(f *testing.F) {
	for _, s := range append(append([]string{}, smsCorpus...), emojiCorpus...) {
		f.Add(s)
	}
	f.Add("")
	f.Add("!!!???")
	f.Add("\xff\xfe not utf-8 but 😀")
	f.Add(strings.Repeat("no ", 200))
	a, _ := NewAnalyzer(AnalyzerOptions{})
	f.Fuzz(func(t *testing.T, text string) {
		got := a.Score(text)
		if math.IsNaN(got.Compound) || got.Compound < -1 || got.Compound > 1 || got.Mark != MarkFor(got.Compound) {
			t.Fatalf("Score(%q) = %+v", text, got)
		}
		capped := Cap(text, 480)
		if len(capped) > 480 || !strings.HasPrefix(text, capped) || (utf8.ValidString(text) && !utf8.ValidString(capped)) {
			t.Fatalf("Cap(%q) = %q", text, capped)
		}
		if again := a.Score(capped); again != got {
			t.Fatalf("Score(%q) = %+v, but its first 480 bytes score %+v", text, got, again)
		}
	})
}
