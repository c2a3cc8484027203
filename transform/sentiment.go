package transform

import (
	"fmt"
	"iter"
	"sync"
	"unicode/utf8"

	"github.com/jonreiter/govader"
)

// Mark is the coarse sentiment shown next to a message, as in the original
// design: devil, unhappy, happy, wink.
type Mark uint8

// Marks. MarkNone is the zero value: the item was not scored.
const (
	MarkNone Mark = iota
	MarkDevil
	MarkUnhappy
	MarkHappy
	MarkWink
)

// Thresholds on the VADER compound score (-1..1) that choose a Mark.
//
// VADER's authors call a compound score ≥ 0.05 positive, ≤ -0.05 negative
// and anything between neutral. With only four marks and no neutral one,
// neutral text ("The package arrived today.", compound 0) is shown as happy:
// a customer who writes plainly should not look upset. ±0.5 separates the
// strong marks: a single strong lexicon word alone stays below it ("ok" is
// 0.30, "I am a bit disappointed" -0.48) while plainly emphatic texts are
// well beyond it ("I hate this, it is the worst service ever!!!" -0.86).
const (
	DevilMax   = -0.5  // compound ≤ DevilMax is devil
	UnhappyMax = -0.05 // DevilMax < compound ≤ UnhappyMax is unhappy
	WinkMin    = 0.5   // compound ≥ WinkMin is wink; everything else is happy
)

// MarkFor maps a compound score to its mark.
func MarkFor(compound float64) Mark {
	switch {
	case compound <= DevilMax:
		return MarkDevil
	case compound <= UnhappyMax:
		return MarkUnhappy
	case compound >= WinkMin:
		return MarkWink
	}
	return MarkHappy
}

var markNames = [...]string{"", "devil", "unhappy", "happy", "wink"}
var markEmoji = [...]string{" ", "😈", "🙁", "🙂", "😉"}
var markASCII = [...]string{"  ", ">:(", ":(", ":)", ";)"}

// String returns the mark's name ("devil", ...), or "" for MarkNone.
func (m Mark) String() string {
	if int(m) < len(markNames) {
		return markNames[m]
	}
	return fmt.Sprintf("Mark(%d)", m)
}

// Emoji returns the mark as an emoji (two cells wide).
func (m Mark) Emoji() string {
	if int(m) < len(markEmoji) {
		return markEmoji[m]
	}
	return "?"
}

// ASCII returns the mark as an ASCII emoticon, for terminals without UTF-8.
func (m Mark) ASCII() string {
	if int(m) < len(markASCII) {
		return markASCII[m]
	}
	return "?"
}

// Score is the sentiment of one message: the raw VADER compound score and the
// mark chosen from it.
type Score struct {
	Compound float64
	Mark     Mark
}

// AnalyzerOptions configures an Analyzer. The zero value is usable.
type AnalyzerOptions struct {
	// MaxBytes caps how much of a message is scored, cut on a rune boundary,
	// so that hostile input cannot make scoring slow. An SMS segment is at
	// most 160 characters; three segments fit in the default. Zero value: 480.
	MaxBytes int
}

// Analyzer scores texts with VADER, using govader
// (github.com/jonreiter/govader) as is. It is immutable after construction
// and safe for concurrent use: govader's analyzer only reads its tables.
//
// govader allocates on every call (about 16 allocations, 1.5 KB for an SMS)
// and scores roughly 100,000 to 150,000 SMS-length texts per second per
// core; the client scores each message once, when it arrives (a 200-message
// history page in under 2 ms), so neither shows (see BENCHMARKS.md,
// Sentiment).
type Analyzer struct {
	sia      *govader.SentimentIntensityAnalyzer
	maxBytes int
}

// lexicon is built once per process: parsing VADER's lexicon takes tens of
// milliseconds and allocates megabytes.
var lexicon = sync.OnceValue(govader.NewSentimentIntensityAnalyzer)

// NewAnalyzer validates opts and returns an analyzer. The VADER lexicon is
// loaded once per process and shared.
func NewAnalyzer(opts AnalyzerOptions) (*Analyzer, error) {
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("transform: analyzer: MaxBytes %d is negative", opts.MaxBytes)
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = 480
	}
	return &Analyzer{sia: lexicon(), maxBytes: opts.MaxBytes}, nil
}

// Score scores text. Only the first MaxBytes bytes count.
func (a *Analyzer) Score(text string) Score {
	c := a.sia.PolarityScores(Cap(text, a.maxBytes)).Compound
	return Score{Compound: c, Mark: MarkFor(c)}
}

// Cap returns at most the first n bytes of s, cut on a rune boundary.
func Cap(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Sentiment is the stage that scores every item's text with a.
func Sentiment(a *Analyzer) Stage[Annotated, Annotated] {
	return func(in iter.Seq[Annotated]) iter.Seq[Annotated] {
		return func(yield func(Annotated) bool) {
			for v := range in {
				v.Sentiment = a.Score(v.Message.Text)
				if !yield(v) {
					return
				}
			}
		}
	}
}
