package store

import (
	"fmt"
	"slices"
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
	// The lowercased words are written one after the other into one buffer,
	// which becomes one string that every word is a slice of: two
	// allocations for the text and one for the slice, instead of one per
	// word and a map (the index writes Words of every inbound message).
	type span struct{ start, end int }
	var spans [32]span
	found := spans[:0]
	buf := make([]byte, 0, len(text))
	start := 0
	end := func() { // ends the word begun at start, if any
		if len(buf) > start {
			found = append(found, span{start, len(buf)})
			start = len(buf)
		}
	}
	for _, r := range text {
		switch {
		case r < utf8.RuneSelf && ('a' <= r && r <= 'z' || '0' <= r && r <= '9'):
			buf = append(buf, byte(r))
		case r < utf8.RuneSelf && 'A' <= r && r <= 'Z':
			buf = append(buf, byte(r)+'a'-'A')
		case r < utf8.RuneSelf:
			end()
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana):
			end()
			buf = utf8.AppendRune(buf, r)
			end()
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			buf = utf8.AppendRune(buf, unicode.ToLower(r))
		default:
			end()
		}
	}
	end()
	if len(found) == 0 {
		return nil
	}
	all := string(buf)
	words := make([]string, 0, len(found))
	var seen map[string]struct{} // only for long texts; short ones are scanned
	for _, sp := range found {
		w := all[sp.start:sp.end]
		if len(w) > maxWord {
			w = truncateUTF8(w, maxWord)
		}
		if seen != nil {
			if _, ok := seen[w]; ok {
				continue
			}
			seen[w] = struct{}{}
		} else if slices.Contains(words, w) {
			continue
		} else if len(words) == 32 {
			seen = make(map[string]struct{}, len(found))
			for _, x := range words {
				seen[x] = struct{}{}
			}
			seen[w] = struct{}{}
		}
		words = append(words, w)
	}
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

// StopWords are the commonest words of English messages, which the search
// index does not list (index version 3, issue 22): about two words in five
// of a typical SMS, each of which cost a key in the same synced write as the
// message. A query still finds messages by them: its other words are looked
// up in the index and the stop words checked in each candidate's text, so
// the results are those of a search of every word. A query of stop words
// only is refused (ParseQuery), since it would read every message.
//
// The list is fixed: a word added to it would have to be deleted from the
// index of every store (as version 3 did for these at open), a word removed
// would miss the messages stored while it was on it.
var StopWords = []string{
	"a", "an", "and", "are", "as", "at", "be", "but", "by", "do", "for", "from",
	"i", "if", "in", "is", "it", "its", "me", "my", "of", "on", "or", "so",
	"that", "the", "this", "to", "was", "we", "were", "you", "your",
	// What is left of contractions ("it's", "don't", "I'm", "I'd", "we'll",
	// "you're", "I've"), which split at the apostrophe.
	"s", "t", "m", "d", "ll", "re", "ve",
}

var stopWords = func() map[string]struct{} {
	m := make(map[string]struct{}, len(StopWords))
	for _, w := range StopWords {
		m[w] = struct{}{}
	}
	return m
}()

// isStopWord reports whether w (a word as Words returns it) is not indexed.
func isStopWord(w string) bool {
	if len(w) > 4 { // the longest stop word: a map lookup only for short words
		return false
	}
	_, ok := stopWords[w]
	return ok
}

// splitQuery separates a query's words into those looked up in the index
// (at least one, for a query ParseQuery accepted) and the stop words,
// checked in the text of each message found.
func splitQuery(words []string) (listed, checked []string) {
	for _, w := range words {
		if isStopWord(w) {
			checked = append(checked, w)
		} else {
			listed = append(listed, w)
		}
	}
	return listed, checked
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
	if listed, _ := splitQuery(words); len(listed) == 0 {
		return nil, invalid("only common words, such as %q; add a less common word", words[0])
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
