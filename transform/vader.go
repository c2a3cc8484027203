package transform

import (
	"bytes"
	"math"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/jonreiter/govader"
)

// vader.go is a port of govader's PolarityScores, compound score only, that
// gives the same numbers without govader's per-call costs: govader builds a
// one-rune string per input rune to look up emoji, runs two regular
// expressions per word for the ALL-CAPS test, lower-cases every word twice,
// joins n-gram strings for every lexicon word, and allocates a dozen slices
// and strings per message. This port makes one pass over the text into
// pooled buffers, looks each word up once in a merged table and only joins
// n-grams whose first word starts an idiom.
//
// It reads the lexicon, the emoji descriptions, the booster words, the
// negations and the idioms from govader's analyzer (they are exported
// through it) so the data cannot drift; only the numeric constants below are
// unexported in govader and copied from its constants.go. The arithmetic is
// written in the same order as govader's so the compound scores are the same
// float64 values, not just close ones (the equivalence tests check this).
//
// Behaviour kept on purpose, even where it looks odd, because the product
// must score like govader: only single-rune emoji are described (multi-rune
// keys of the emoji table never match), a description is glued to the word
// after it ("😀abc" → "grinning faceabc"), words are split on ASCII spaces
// only, the lexicon test that stops a booster or a "least" from applying uses
// the word's original case, and the "least" test compares the original case.

// Copied from govader's constants.go (unexported there).
const (
	vaderCIncr         = 0.733
	vaderNScalar       = -0.74
	vaderAlpha         = 15
	vaderScalarScale1  = 0.95
	vaderScalarScale2  = 0.9
	vaderEPScale       = 0.292
	vaderQMScale       = 0.18
	vaderMaxEP         = 4
	vaderMaxQM         = 0.96
	vaderNegationScale = 1.25
	vaderButScale      = 0.5
)

// Word flags in wordInfo.
const (
	wLex          uint8 = 1 << iota // in the lexicon
	wBooster                        // in the booster dictionary
	wNegate                         // in the negation list
	wIdiomStart                     // first word of a multi-word special-case idiom
	wBoosterStart                   // first word of a multi-word booster
)

// Words the algorithm compares by value (lower-cased).
const (
	kindOther uint8 = iota
	kindNo
	kindOr
	kindNor
	kindKind
	kindOf
	kindNever
	kindSo
	kindThis
	kindWithout
	kindDoubt
	kindBut
)

var vaderKinds = map[string]uint8{
	"no": kindNo, "or": kindOr, "nor": kindNor, "kind": kindKind, "of": kindOf,
	"never": kindNever, "so": kindSo, "this": kindThis, "without": kindWithout,
	"doubt": kindDoubt, "but": kindBut,
}

// wordInfo is everything the scorer needs to know about one word, found with
// one map lookup.
type wordInfo struct {
	valence float64 // lexicon valence if flags&wLex
	booster float64 // booster scalar if flags&wBooster
	flags   uint8
	kind    uint8
}

// vaderScorer computes govader's compound score. It is immutable after
// construction and safe for concurrent use; per-call buffers come from a
// pool.
type vaderScorer struct {
	words   map[string]wordInfo
	special map[string]float64 // govader's SpecialCaseIdioms
	booster map[string]float64 // govader's BoosterDict
	emoji   map[rune]string    // single-rune keys of govader's EmojiDict
	// asciiEmoji is true if some emoji key is an ASCII character; then ASCII
	// text must go through the emoji pass too.
	asciiEmoji bool
	pool       sync.Pool
}

// vaderToken is one space-separated word of the text after emoji expansion
// and trimming, with govader's punctuation stripping applied.
type vaderToken struct {
	a, b      int // original-case word: text[a:b]
	lo, hi    int // lower-cased word: lower[lo:hi]
	info      wordInfo
	origInLex bool // the original-case word is in the lexicon
	upper     bool // govader's stringIsUpper: no ASCII lower-case, some ASCII upper-case
	negated   bool // in the negation list or contains "n't"
	sent      float64
}

type vaderScratch struct {
	text  []byte
	lower []byte
	join  []byte
	toks  []vaderToken
}

// newVaderScorer builds the scorer's tables from a govader analyzer.
func newVaderScorer(sia *govader.SentimentIntensityAnalyzer) *vaderScorer {
	v := &vaderScorer{
		words:   make(map[string]wordInfo, len(sia.Lexicon)+len(sia.Constants.BoosterDict)+len(sia.Constants.NegateList)+len(vaderKinds)),
		special: sia.Constants.SpecialCaseIdioms,
		booster: sia.Constants.BoosterDict,
		emoji:   make(map[rune]string),
	}
	for w, val := range sia.Lexicon {
		wi := v.words[w]
		wi.valence, wi.flags = val, wi.flags|wLex
		v.words[w] = wi
	}
	for w, val := range sia.Constants.BoosterDict {
		wi := v.words[w]
		wi.booster, wi.flags = val, wi.flags|wBooster
		v.words[w] = wi
		// Only keys with a space can equal a joined n-gram.
		if first, _, ok := strings.Cut(w, " "); ok {
			wi := v.words[first]
			wi.flags |= wBoosterStart
			v.words[first] = wi
		}
	}
	for _, w := range sia.Constants.NegateList {
		wi := v.words[w]
		wi.flags |= wNegate
		v.words[w] = wi
	}
	for w := range sia.Constants.SpecialCaseIdioms {
		if first, _, ok := strings.Cut(w, " "); ok {
			wi := v.words[first]
			wi.flags |= wIdiomStart
			v.words[first] = wi
		}
	}
	for w, k := range vaderKinds {
		wi := v.words[w]
		wi.kind = k
		v.words[w] = wi
	}
	for k, desc := range sia.EmojiDict {
		// govader looks up string(r) for every rune r of the text, so only
		// keys that are exactly one rune's encoding can ever match. Invalid
		// bytes reach the lookup as U+FFFD.
		r, size := utf8.DecodeRuneInString(k)
		if size != len(k) || string(r) != k {
			continue
		}
		v.emoji[r] = desc
		if r < utf8.RuneSelf {
			v.asciiEmoji = true
		}
	}
	v.pool.New = func() any {
		return &vaderScratch{
			text:  make([]byte, 0, 1024),
			lower: make([]byte, 0, 1024),
			join:  make([]byte, 0, 64),
			toks:  make([]vaderToken, 0, 128),
		}
	}
	return v
}

// asciiPunct is govader's PunctuationString (all ASCII punctuation) as a
// byte table. strings.Trim with an all-ASCII cutset only ever removes those
// bytes, so trimming bytes is the same as trimming runes.
var asciiPunct = func() (t [256]bool) {
	for _, c := range []byte(`"!#$%&\'()*+,-./:;<=>?@[\\]^_` + "`{|}~") {
		t[c] = true
	}
	return t
}()

// maxPooledBytes bounds the scratch buffers kept for reuse.
const maxPooledBytes = 64 << 10

// Compound returns govader's PolarityScores(text).Compound.
func (v *vaderScorer) Compound(text string) float64 {
	sc := v.pool.Get().(*vaderScratch)
	c := v.compound(sc, text)
	// Do not keep the buffers of a huge text (a large MaxBytes) alive.
	if cap(sc.text) <= maxPooledBytes && cap(sc.lower) <= maxPooledBytes && cap(sc.toks) <= maxPooledBytes/4 {
		v.pool.Put(sc)
	}
	return c
}

func (v *vaderScorer) compound(sc *vaderScratch, text string) float64 {
	sc.text = v.expandEmoji(sc.text[:0], text)
	t := bytes.TrimSpace(sc.text)

	// Split on ' ' exactly like strings.Split: n spaces give n+1 words, some
	// possibly empty.
	toks := sc.toks[:0]
	low := sc.lower[:0]
	uppers := 0
	for start := 0; ; {
		end := bytes.IndexByte(t[start:], ' ')
		if end < 0 {
			end = len(t)
		} else {
			end += start
		}
		var tok vaderToken
		low = v.word(&tok, t, start, end, low)
		if tok.upper {
			uppers++
		}
		toks = append(toks, tok)
		if end == len(t) {
			break
		}
		start = end + 1
	}
	sc.toks, sc.lower = toks, low

	n := len(toks)
	capDiff := 0 < n-uppers && n-uppers < n

	for i := range toks {
		tk := &toks[i]
		switch {
		case tk.info.flags&wBooster != 0:
			tk.sent = 0
		case i < n-1 && tk.info.kind == kindKind && toks[i+1].info.kind == kindOf:
			tk.sent = 0
		default:
			tk.sent = v.valence(sc, t, i, capDiff)
		}
	}

	// Contrastive "but": damp what comes before the first one, stress what
	// comes after it.
	for bi := range toks {
		if toks[bi].info.kind != kindBut {
			continue
		}
		for i := range toks {
			if i < bi {
				toks[i].sent = (1 - vaderButScale) * toks[i].sent
			}
			if i > bi {
				toks[i].sent = (1 + vaderButScale) * toks[i].sent
			}
		}
		break
	}

	// Sum left to right from 0 like gonum's mat.Sum of a VecDense.
	var sum float64
	for i := range toks {
		sum += toks[i].sent
	}
	emph := punctuationEmphasis(t)
	if sum > 0 {
		sum += emph
	} else if sum < 0 {
		sum -= emph
	}
	return vaderNormalize(sum, vaderAlpha)
}

// expandEmoji appends text to dst with every described emoji replaced by its
// description, as govader does: a space is put before a description unless
// the previous character was a space, none after it, and invalid UTF-8 comes
// out as U+FFFD.
func (v *vaderScorer) expandEmoji(dst []byte, text string) []byte {
	if !v.asciiEmoji {
		i := 0
		for i < len(text) && text[i] < utf8.RuneSelf {
			i++
		}
		dst = append(dst, text[:i]...)
		if i == len(text) {
			return dst
		}
		text = text[i:]
		prevSpace := i == 0 || dst[len(dst)-1] == ' '
		return v.expandEmojiFrom(dst, text, prevSpace)
	}
	return v.expandEmojiFrom(dst, text, true)
}

func (v *vaderScorer) expandEmojiFrom(dst []byte, text string, prevSpace bool) []byte {
	for _, r := range text {
		if (r >= utf8.RuneSelf || v.asciiEmoji) && len(v.emoji) > 0 {
			if desc, ok := v.emoji[r]; ok {
				if !prevSpace {
					dst = append(dst, ' ')
				}
				dst = append(dst, desc...)
				prevSpace = false
				continue
			}
		}
		dst = utf8.AppendRune(dst, r)
		prevSpace = r == ' '
	}
	return dst
}

// word fills tok for the word t[start:end], appending its lower-case form
// to low.
func (v *vaderScorer) word(tok *vaderToken, t []byte, start, end int, low []byte) []byte {
	// govader's stripPunctuationIfWord: strip leading and trailing
	// punctuation unless fewer than 3 bytes would remain.
	l, r := start, end
	for l < r && asciiPunct[t[l]] {
		l++
	}
	for r > l && asciiPunct[t[r-1]] {
		r--
	}
	if r-l < 3 {
		l, r = start, end
	}
	w := t[l:r]

	hasLower, hasUpper, ascii := false, false, true
	for _, c := range w {
		switch {
		case 'a' <= c && c <= 'z':
			hasLower = true
		case 'A' <= c && c <= 'Z':
			hasUpper = true
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}

	lo := len(low)
	if ascii {
		for _, c := range w {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			low = append(low, c)
		}
	} else {
		// strings.ToLower maps rune by rune with unicode.ToLower; the text
		// is valid UTF-8 after the emoji pass.
		for i := 0; i < len(w); {
			r, size := utf8.DecodeRune(w[i:])
			low = utf8.AppendRune(low, unicode.ToLower(r))
			i += size
		}
	}
	lw := low[lo:]

	tok.a, tok.b = l, r
	tok.lo, tok.hi = lo, len(low)
	tok.info = v.words[string(lw)]
	tok.origInLex = tok.info.flags&wLex != 0
	if (hasUpper || !ascii) && !bytes.Equal(w, lw) {
		tok.origInLex = v.words[string(w)].flags&wLex != 0
	}
	tok.upper = hasUpper && !hasLower
	tok.negated = tok.info.flags&wNegate != 0 || bytes.Contains(lw, []byte("n't"))
	return low
}

// valence is govader's sentimentValence for word i.
func (v *vaderScorer) valence(sc *vaderScratch, t []byte, i int, capDiff bool) float64 {
	toks := sc.toks
	tk := &toks[i]
	if tk.info.flags&wLex == 0 {
		return 0
	}
	val := tk.info.valence
	if tk.info.kind == kindNo && i+1 < len(toks) && toks[i+1].info.flags&wLex != 0 {
		val = 0
	}
	if (i > 0 && toks[i-1].info.kind == kindNo) ||
		(i > 1 && toks[i-2].info.kind == kindNo) ||
		(i > 2 && toks[i-3].info.kind == kindNo && (toks[i-1].info.kind == kindOr || toks[i-1].info.kind == kindNor)) {
		val = tk.info.valence * vaderNScalar
	}
	if tk.upper && capDiff {
		if val > 0 {
			val += vaderCIncr
		} else {
			val -= vaderCIncr
		}
	}

	for startI := 0; startI < 3; startI++ {
		if i > startI && !toks[i-(startI+1)].origInLex {
			s := scalarIncDec(&toks[i-(startI+1)], val, capDiff)
			if startI == 1 && s != 0 {
				s = s * vaderScalarScale1
			}
			if startI == 2 && s != 0 {
				s = s * vaderScalarScale2
			}
			val = val + s
			val = negationCheck(val, toks, startI, i)
			if startI == 2 {
				val = v.specialIdioms(sc, val, i)
			}
		}
	}

	// govader's leastCheck, which compares the original-case words.
	orig := func(j int) []byte { return t[toks[j].a:toks[j].b] }
	if i > 1 && !toks[i-1].origInLex && string(orig(i-1)) == "least" {
		if p := string(orig(i - 2)); p != "at" && p != "very" {
			val = val * vaderNScalar
		}
	} else if i > 0 && !toks[i-1].origInLex && string(orig(i-1)) == "least" {
		val = val * vaderNScalar
	}
	return val
}

// scalarIncDec is govader's: a booster before a word pushes its valence away
// from zero, a dampener towards it, more so in ALL CAPS among other words.
func scalarIncDec(w *vaderToken, valence float64, capDiff bool) float64 {
	scalar := 0.0
	if w.info.flags&wBooster != 0 {
		scalar = w.info.booster
		if valence < 0 {
			scalar *= -1
		}
		if w.upper && capDiff {
			if valence > 0 {
				scalar += vaderCIncr
			} else {
				scalar -= vaderCIncr
			}
		}
	}
	return scalar
}

// negationCheck is govader's.
func negationCheck(valence float64, toks []vaderToken, startI, i int) float64 {
	newValence := valence
	k := func(j int) uint8 { return toks[j].info.kind }
	switch startI {
	case 0:
		if toks[i-1].negated {
			newValence = newValence * vaderNScalar
		}
	case 1:
		if k(i-2) == kindNever && (k(i-1) == kindSo || k(i-1) == kindThis) {
			newValence = valence * vaderNegationScale
		} else if k(i-2) == kindWithout && k(i-1) == kindDoubt {
			newValence = valence
		} else if toks[i-2].negated {
			newValence = valence * vaderNScalar
		}
	case 2:
		if k(i-3) == kindNever &&
			((k(i-2) == kindSo || k(i-2) == kindThis) || (k(i-1) == kindSo || k(i-1) == kindThis)) {
			newValence = valence * vaderNegationScale
		} else if k(i-3) == kindWithout && (k(i-2) == kindDoubt || k(i-1) == kindDoubt) {
			newValence = valence
		} else if toks[i-3].negated {
			newValence = valence * vaderNScalar
		}
	}
	return newValence
}

// specialIdioms is govader's specialIdiomsCheck (i ≥ 3). An n-gram is joined
// and looked up only if its first word starts some key: words never contain
// a space, so otherwise the joined string cannot equal a key.
func (v *vaderScorer) specialIdioms(sc *vaderScratch, valence float64, i int) float64 {
	newValence := valence
	toks := sc.toks
	n := len(toks)
	lookup := func(m map[string]float64, flag uint8, first, count int) (float64, bool) {
		if toks[first].info.flags&flag == 0 {
			return 0, false
		}
		j := sc.join[:0]
		for w := first; w < first+count; w++ {
			if w > first {
				j = append(j, ' ')
			}
			j = append(j, sc.lower[toks[w].lo:toks[w].hi]...)
		}
		sc.join = j
		val, ok := m[string(j)]
		return val, ok
	}

	// onezero, twoonezero, twoone, threetwoone, threetwo: the first match wins.
	for _, g := range [...][2]int{{i - 1, 2}, {i - 2, 3}, {i - 2, 2}, {i - 3, 3}, {i - 3, 2}} {
		if val, ok := lookup(v.special, wIdiomStart, g[0], g[1]); ok {
			newValence = val
			break
		}
	}
	if n-1 > i {
		if val, ok := lookup(v.special, wIdiomStart, i, 2); ok {
			newValence = val
		}
	}
	if n-1 > i+1 {
		if val, ok := lookup(v.special, wIdiomStart, i, 3); ok {
			newValence = val
		}
	}
	// threetwoone, threetwo, twoone against the booster dictionary.
	for _, g := range [...][2]int{{i - 3, 3}, {i - 3, 2}, {i - 2, 2}} {
		if val, ok := lookup(v.booster, wBoosterStart, g[0], g[1]); ok {
			newValence = newValence + val
		}
	}
	return newValence
}

// punctuationEmphasis is govader's: up to four '!' and two or more '?' add
// emphasis.
func punctuationEmphasis(t []byte) float64 {
	ep, qm := 0, 0
	for _, c := range t {
		switch c {
		case '!':
			ep++
		case '?':
			qm++
		}
	}
	if ep > vaderMaxEP {
		ep = vaderMaxEP
	}
	epAmplifier := float64(ep) * vaderEPScale
	qmAmplifier := 0.0
	if qm > 1 {
		if qm <= 3 {
			qmAmplifier = float64(qm) * vaderQMScale
		} else {
			qmAmplifier = vaderMaxQM
		}
	}
	return epAmplifier + qmAmplifier
}

// vaderNormalize maps a sum of valences into [-1, 1] like govader's normalize.
func vaderNormalize(score, alpha float64) float64 {
	normScore := score / math.Sqrt((score*score)+alpha)
	if normScore < -1.0 {
		return -1.0
	} else if normScore > 1.0 {
		return 1.0
	}
	return normScore
}
