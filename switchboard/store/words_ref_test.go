package store

import (
	"slices"
	"strings"
	"testing"
	"unicode"
)

// wordsReference is the plain statement of Words (one builder and a map),
// which the allocation-lean Words must agree with on every text.
func wordsReference(text string) []string {
	var words []string
	seen := make(map[string]struct{})
	add := func(w string) {
		w = truncateUTF8(w, maxWord)
		if _, ok := seen[w]; !ok {
			seen[w] = struct{}{}
			words = append(words, w)
		}
	}
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			add(b.String())
			b.Reset()
		}
	}
	for _, r := range text {
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana):
			flush()
			add(string(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(unicode.ToLower(r))
		default:
			flush()
		}
	}
	flush()
	return words
}

func FuzzWordsReference(f *testing.F) {
	for _, s := range []string{"", "Hi, where is my order? ORDER order", "café Ünïcode 東京タワー ok", strings.Repeat("w", 70) + " " + strings.Repeat("w", 65),
		strings.Repeat("a b c d e f g h i j k l m n o p q r s t u v w x y z aa bb cc dd ee ff gg hh ii ", 2), "\xff\xfeA\u212a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if got, want := Words(text), wordsReference(text); !slices.Equal(got, want) {
			t.Fatalf("Words(%q) = %q, want %q", text, got, want)
		}
	})
}
