package transform

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fast scorer must give govader's compound score. Differences are
// allowed up to vaderTolerance only so that a build that fuses
// multiply-adds differently (GOAMD64=v3) cannot fail the tests; on the
// default build the scores are bit-identical and checkSame reports any that
// are not.
const vaderTolerance = 1e-9

// checkSame fails t if the fast scorer and govader disagree on text, and
// reports whether they agree to the bit.
func checkSame(t *testing.T, text string) (exact bool) {
	t.Helper()
	want := lexicon().PolarityScores(text).Compound
	got := scorer().Compound(text)
	if math.IsNaN(got) || math.Abs(got-want) > vaderTolerance {
		t.Errorf("compound(%q) = %v, govader %v", text, got, want)
	}
	return got == want
}

// vaderCases are texts chosen to reach every branch of the algorithm.
var vaderCases = []struct{ name, text string }{
	// The reference sentences of govader (and of the Python original).
	{"ref smart", "VADER is smart, handsome, and funny."},
	{"ref smart!", "VADER is smart, handsome, and funny!"},
	{"ref very", "VADER is very smart, handsome, and funny."},
	{"ref VERY", "VADER is VERY SMART, handsome, and FUNNY."},
	{"ref VERY!!!", "VADER is VERY SMART, handsome, and FUNNY!!!"},
	{"ref FRIGGIN", "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!"},
	{"ref not nor", "VADER is not smart, handsome, nor funny."},
	{"ref book", "The book was good."},
	{"ref at least", "At least it isn't a horrible book."},
	{"ref kind of", "The book was only kind of good."},
	{"ref but", "The plot was good, but the characters are uncompelling and the dialog is not great."},
	{"ref SUX", "Today SUX!"},
	{"ref kinda But", "Today only kinda sux! But I'll get by, lol"},
	{"ref emoticons", "Make sure you :) or :D today!"},
	{"ref emoji", "Catch utf-8 emoji such as such as 💘 and 💋 and 😁"},
	{"ref emoji glued", "Catch utf-8 emoji such as such as💘 and 💋 and 😁"},
	{"ref not bad", "Not bad at all"},
	{"ref never", "Sentiment analysis has never been good."},
	{"ref never this", "Sentiment analysis has never been this good!"},
	{"ref shit", "Most automated sentiment analysis tools are shit."},
	{"ref the shit", "With VADER, sentiment analysis is the shit!"},
	{"ref quite bad", "Other sentiment analysis tools can be quite bad."},
	{"ref bad ass", "On the other hand, VADER is quite bad ass"},
	{"ref badass", "VADER is such a badass!"},
	{"ref without a doubt", "Without a doubt, excellent idea."},
	{"ref without a doubt an", "Without a doubt, an excellent idea."},
	{"ref most", "Roger Dodger is one of the most compelling variations on this theme."},
	{"ref at least compelling", "Roger Dodger is at least compelling as a variation on the theme."},
	{"ref least compelling", "Roger Dodger is one of the least compelling variations on this theme."},
	{"ref not such a badass", "Not such a badass after all."},
	{"ref !!!!!", "Not GREATLY bad at all!!!!!"},
	{"ref ??", "Not GREATLY bad at all??"},
	{"ref ????", "Not GREATLY bad at all????"},
	{"ref not least", "Not least GREATLY bad at all????"},
	{"ref greatly least", "Not GREATLY least bad at all????"},
	{"ref least first", "least bad at all????"},
	{"ref no not", "No not GREATLY least bad at all????"},
	{"ref kind of no", "The book was only kind of no good."},
	{"ref kind of bad ass", "The book was only kind of bad ass good."},
	{"ref never so", "The book was only kind of never so bad ass good."},
	{"ref without doubt", "The book was only kind of without doubt bad ass good."},
	{"ref badn't", "The book was only kind of badn't ass good."},
	// This package's reference sentences.
	{"pkg hate", "I hate this, it is the worst service ever!!!"},
	{"pkg disappointed", "I am a bit disappointed"},
	{"pkg not good", "This is not good"},
	{"pkg meh", "meh"},
	{"pkg neutral", "The package arrived today."},
	{"pkg ok", "ok"},
	{"pkg thanks", "Thanks, that works"},
	{"pkg amazing", "Thank you so much, you are amazing! :)"},
	// SMS-like texts.
	{"sms late", "Hi, I ordered the camcorder last week and it still hasn't arrived. Can you check the tracking number please? Thanks!"},
	{"sms refund", "This is ridiculous. Third time I write, nobody answers. I want a refund NOW or I'm calling my bank!!!"},
	{"sms thumbs", "got it 👍 thx"},
	{"sms angry emoji", "😡😡😡 where is my parcel???"},
	{"sms heart glued", "love it❤️ thank u"},
	{"sms flags", "shipping to 🇫🇷 or 🇩🇪?"},
	{"sms skin tone", "👍🏽 great"},
	{"sms zwj family", "👨‍👩‍👧 happy family"},
	{"sms emoji after space", "ok 🙂"},
	{"sms emoji first", "🙂 ok"},
	{"sms emoji only", "😂"},
	{"sms emoticons", ":( :-( :'( </3 <3 :P XD xd :Þ"},
	{"sms caps all", "I WANT MY MONEY BACK"},
	{"sms caps some", "I want my money back NOW, this is TERRIBLE"},
	{"sms caps booster", "this is EXTREMELY good and VERY bad"},
	{"sms caps dampener", "SLIGHTLY good but not BARELY awful"},
	{"sms negation nt", "it doesn't work and I can't log in, it's not great"},
	{"sms negation apostrophe less", "doesnt work, isnt good, wont help"},
	{"sms never so", "never so happy, never this sad"},
	{"sms without doubt", "without a doubt good, without doubt bad"},
	{"sms but twice", "good but bad but good"},
	{"sms but first", "but it is great"},
	{"sms but last", "it is great but"},
	{"sms BUT caps", "great BUT awful"},
	{"sms no no", "no no no good"},
	{"sms no or", "no food or love"},
	{"sms no nor", "no food nor love"},
	{"sms no lexicon next", "no problem, no worries, no good"},
	{"sms least", "at least it works, very least good, least good"},
	{"sms Least case", "the Least good, at LEAST good"},
	{"sms kind of", "kind of good, kind of, kind"},
	{"sms sort of", "sort of nice and just enough bad"},
	{"sms idiom after", "it was the bomb, to die for, kiss of death"},
	{"sms idiom yeah right", "great service yeah right"},
	{"sms idiom cut", "this phone does not cut the mustard"},
	{"sms idiom weather", "I am under the weather today sorry"},
	{"sms booster chain", "really really very extremely good"},
	{"sms question marks", "what??? why?? how? really????"},
	{"sms exclamations", "great!!!!!!!! awful!"},
	{"sms punctuation words", "!!! ??? ... ,,, good..."},
	{"sms short punct", "ok. no! :) ;) (:"},
	{"sms hashtags", "#love @bad $great love! (good) 'nice'"},
	{"sms mixed case", "GoOd bAd Love HATE"},
	{"sms digits", "1 2 3 4 5 100% good"},
	// Empty, whitespace, unicode and hostile inputs.
	{"empty", ""},
	{"space", " "},
	{"spaces", "     "},
	{"tabs newlines", "\t\n\r\v\f"},
	{"double spaces", "good  bad   great"},
	{"leading trailing spaces", "   good   "},
	{"newline words", "good\nbad\tgreat"},
	{"nbsp", "\u00a0good\u00a0"},
	{"ideographic space", "\u3000great\u3000"},
	{"unicode lower", "GÖÖD ÜBEL Straße İstanbul"},
	{"kelvin sign", "o\u212Aay \u212Aind of good"},
	{"dotted I", "L\u0130KE \u0130t"},
	{"cjk", "这个很好 とても良い 좋아요"},
	{"rtl", "جيد جدا good"},
	{"combining", "goo\u0301d cafe\u0301"},
	{"invalid utf8", "good \xff\xfe bad \xc3"},
	{"invalid glued emoji", "\xff😀\xff"},
	{"replacement char", "\ufffd good \ufffd"},
	{"surrogate bytes", "\xed\xa0\x80 good"},
	{"nul", "good\x00bad"},
	{"control", "\x1b[31mgood\x1b[0m"},
	{"only punctuation", "!?!?!?!?"},
	{"long word", strings.Repeat("a", 500)},
	{"many words", strings.Repeat("good bad ", 60)},
	{"many exclamations", strings.Repeat("!", 100) + " good"},
	{"many emoji", strings.Repeat("😀", 100)},
}

func TestVaderMatchesGovader(t *testing.T) {
	for _, tc := range vaderCases {
		t.Run(tc.name, func(t *testing.T) {
			if !checkSame(t, tc.text) {
				t.Errorf("compound(%q) within tolerance but not bit-identical", tc.text)
			}
		})
	}
}

// TestVaderMatchesGovaderEveryWord puts every lexicon word, booster,
// negation and single-rune emoji into contexts that exercise the rules
// around it.
func TestVaderMatchesGovaderEveryWord(t *testing.T) {
	sia := lexicon()
	words := make([]string, 0, len(sia.Lexicon)+len(sia.Constants.BoosterDict)+len(sia.Constants.NegateList))
	for w := range sia.Lexicon {
		words = append(words, w)
	}
	for w := range sia.Constants.BoosterDict {
		words = append(words, w)
	}
	words = append(words, sia.Constants.NegateList...)
	for e := range sia.EmojiDict {
		if utf8.RuneCountInString(e) == 1 {
			words = append(words, e)
		}
	}
	slices.Sort(words)
	templates := []func(w string) string{
		func(w string) string { return w },
		func(w string) string {
			return "it is not very " + w + " but " + strings.ToUpper(w) + "!! no " + w +
				" at least " + w + " never so " + w + "?? " + w + "x" + w + " kind of " + w + " the " + w
		},
	}
	step := 1
	if raceEnabled {
		// -race is many times slower and adds nothing to a single-goroutine
		// comparison (TestVaderScorerConcurrent is the race test): sample.
		step = 20
	}
	inexact, n := 0, 0
	for i := 0; i < len(words); i += step {
		for _, tmpl := range templates {
			n++
			if !checkSame(t, tmpl(words[i])) {
				inexact++
			}
		}
	}
	if inexact > 0 {
		t.Errorf("%d of %d texts within tolerance but not bit-identical", inexact, n)
	}
}

// TestVaderMatchesGovaderRandom scores random texts built from the words
// the rules look for, mixed with emoji, punctuation, odd whitespace and
// random bytes.
func TestVaderMatchesGovaderRandom(t *testing.T) {
	vocab := []string{
		"good", "GOOD", "Good", "bad", "BAD", "great", "awful", "love", "hate", "ok", "meh", "sux",
		"no", "No", "NO", "not", "never", "isn't", "doesnt", "can't", "without", "nor", "or", "rarely",
		"very", "VERY", "extremely", "slightly", "SLIGHTLY", "kinda", "kind", "of", "sort", "just", "enough",
		"but", "But", "BUT", "least", "Least", "at", "so", "this", "doubt",
		"the", "shit", "bomb", "bad", "ass", "yeah", "right", "kiss", "death", "to", "die", "for",
		"cut", "mustard", "under", "weather",
		":)", ":(", ":D", "XD", "<3", ":Þ", "😀", "😡", "👍", "❤️", "🇫🇷", "💘",
		"!", "!!", "?", "??", "...", ",", "good!", "(bad)", "'love'", "#great",
		"", " ", "\t", "\n", "\u00a0", "\xff", "\ufffd", "İ", "\u212A", "Straße",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	texts := 3000
	if raceEnabled {
		texts = 300
	}
	inexact := 0
	var b strings.Builder
	for range texts {
		b.Reset()
		for range 1 + rng.IntN(30) {
			if rng.IntN(20) == 0 {
				b.WriteByte(byte(rng.IntN(256)))
			} else {
				b.WriteString(vocab[rng.IntN(len(vocab))])
			}
			if rng.IntN(8) != 0 {
				b.WriteByte(' ')
			}
		}
		if !checkSame(t, b.String()) {
			inexact++
		}
	}
	if inexact > 0 {
		t.Errorf("%d of %d texts within tolerance but not bit-identical", inexact, texts)
	}
}

// TestAnalyzerMatchesGovader checks the analyzer end to end: the cap, then
// govader's score and the mark chosen from it.
func TestAnalyzerMatchesGovader(t *testing.T) {
	for _, maxBytes := range []int{0, 1, 16, 100} {
		a, err := NewAnalyzer(AnalyzerOptions{MaxBytes: maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		capped := maxBytes
		if capped == 0 {
			capped = 480
		}
		for _, tc := range vaderCases {
			got := a.Score(tc.text)
			want := lexicon().PolarityScores(Cap(tc.text, capped)).Compound
			if math.Abs(got.Compound-want) > vaderTolerance || got.Mark != MarkFor(want) {
				t.Errorf("MaxBytes %d: Score(%q) = %+v, govader %v", maxBytes, tc.text, got, want)
			}
		}
	}
}

// TestVaderScorerConcurrent scores from several goroutines at once: the
// pooled buffers must not be shared (run with -race).
func TestVaderScorerConcurrent(t *testing.T) {
	a, _ := NewAnalyzer(AnalyzerOptions{})
	want := make([]Score, len(vaderCases))
	for i, tc := range vaderCases {
		want[i] = a.Score(tc.text)
	}
	done := make(chan []string)
	for g := range 4 {
		go func() {
			var bad []string
			for r := range 20 {
				for i := range vaderCases {
					j := (i + g + r) % len(vaderCases)
					if got := a.Score(vaderCases[j].text); got != want[j] {
						bad = append(bad, vaderCases[j].name)
					}
				}
			}
			done <- bad
		}()
	}
	for range 4 {
		if bad := <-done; len(bad) > 0 {
			t.Errorf("concurrent scores differ for %v", bad)
		}
	}
}

func TestVaderScoreAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items on purpose under -race")
	}
	a, _ := NewAnalyzer(AnalyzerOptions{})
	a.Score("warm the pool")
	for _, text := range []string{smsCorpus[0], smsCorpus[2], "got it 👍 thx 😀", "the bomb kind of good"} {
		if n := testing.AllocsPerRun(100, func() { a.Score(text) }); n > 0 {
			t.Errorf("Score(%q) allocates %v times", text, n)
		}
	}
}

// FuzzScoreMatchesGovader compares the fast scorer with govader on
// arbitrary strings, and the analyzer with govader on the capped string.
func FuzzScoreMatchesGovader(f *testing.F) {
	for _, tc := range vaderCases {
		f.Add(tc.text)
	}
	for _, s := range smsCorpus {
		f.Add(s)
	}
	a, _ := NewAnalyzer(AnalyzerOptions{})
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 4096 {
			text = text[:4096] // keep each run short; the analyzer scores at most 480 bytes anyway
		}
		checkSame(t, text)
		want := lexicon().PolarityScores(Cap(text, 480)).Compound
		if got := a.Score(text).Compound; math.Abs(got-want) > vaderTolerance {
			t.Errorf("Score(%q) = %v, govader on the capped text %v", text, got, want)
		}
	})
}

// TestVaderHugeText scores a text far beyond the default cap (an analyzer
// with a large MaxBytes), whose buffers must not be pooled.
func TestVaderHugeText(t *testing.T) {
	huge := strings.Repeat("I LOVE it 😀 but it is not great!! ", 1500) // > maxPooledBytes after the emoji pass
	a, err := NewAnalyzer(AnalyzerOptions{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	want := lexicon().PolarityScores(huge).Compound
	if got := a.Score(huge).Compound; math.Abs(got-want) > vaderTolerance {
		t.Fatalf("Score(huge) = %v, govader %v", got, want)
	}
}
