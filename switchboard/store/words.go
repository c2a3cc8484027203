package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Search limits, as the protocol states them.
const (
	MaxQuery          = protocol.MaxQuery
	MaxQueryWords     = protocol.MaxQueryWords
	DefaultSearchPage = protocol.DefaultSearchPage
	MaxSearchPage     = protocol.MaxSearchPage
)

// maxWord is the longest word indexed, in bytes: longer words are cut (at a
// character boundary), in messages and in queries alike, so they still match
// each other.
const maxWord = 64

// Words returns the distinct words of text, in order of first appearance,
// as the search index stores them. A word is a run of letters, digits and
// combining marks (Unicode categories L, N, M), lowercased; everything else
// separates words. Han, Hiragana and Katakana characters, which are written
// without spaces, are one word each. Words are cut to 64 bytes.
//
// Matching is by whole words: "order" finds "Order," and "ORDER" but not
// "orders" or "reorder"; "café" does not find "cafe".
func Words(text string) []string {
	var words []string
	seen := make(map[string]struct{})
	add := func(w string) {
		if len(w) > maxWord {
			w = truncateUTF8(w, maxWord)
		}
		if _, ok := seen[w]; ok {
			return
		}
		seen[w] = struct{}{}
		words = append(words, w)
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

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ParseQuery turns a search query into the words a message must all hold
// (see Words). The error, ErrInvalid, says what is wrong in words meant for
// the person who typed the query.
func ParseQuery(q string) ([]string, error) {
	switch {
	case len(q) > MaxQuery:
		return nil, invalid("the query is %d bytes; at most %d", len(q), MaxQuery)
	case !utf8.ValidString(q):
		return nil, invalid("the query is not valid UTF-8")
	}
	words := Words(q)
	switch {
	case len(words) == 0:
		return nil, invalid("the query holds no word to search for (words are letters and digits)")
	case len(words) > MaxQueryWords:
		return nil, invalid("the query holds %d words; at most %d", len(words), MaxQueryWords)
	}
	return words, nil
}

// searchLimit checks a page size (0 = DefaultSearchPage).
func searchLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultSearchPage, nil
	case limit < 0 || limit > MaxSearchPage:
		return 0, invalid("limit must be between 1 and %d", MaxSearchPage)
	}
	return limit, nil
}

// errQuery wraps a search error with the operation.
func errQuery(q string, err error) error {
	return fmt.Errorf("store: search %q: %w", truncateUTF8(q, 64), err)
}
