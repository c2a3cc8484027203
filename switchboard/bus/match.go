package bus

import (
	"fmt"
	"strings"
)

// Match reports whether the routing key matches the topic pattern with AMQP
// topic-exchange semantics: words are separated by dots, `*` matches exactly
// one word and `#` matches zero or more words. As in RabbitMQ, the empty key
// has zero words and "a..b" has an empty middle word.
func Match(pattern, key string) bool {
	// The words go into stack arrays (keys on the node's paths have a few
	// words): strings.Split cost an allocation per call and side.
	var pb, kb [16]string
	return matchWords(splitWords(pb[:0], pattern), splitWords(kb[:0], key))
}

// splitWords appends the words of s to dst, split on dots; the empty string
// has no words.
func splitWords(dst []string, s string) []string {
	if s == "" {
		return dst
	}
	for {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return append(dst, s)
		}
		dst = append(dst, s[:i])
		s = s[i+1:]
	}
}

// matchWords is the classic wildcard match with one backtracking point (the
// last `#` seen), which is correct because `#` matches any run of words: it
// runs in O(len(p)*len(k)) worst case without recursion or allocation.
func matchWords(p, k []string) bool {
	pi, ki := 0, 0
	star, starK := -1, 0 // index of the last '#' in p, and the key index it resumes from
	for ki < len(k) {
		switch {
		case pi < len(p) && p[pi] == "#":
			star, starK = pi, ki
			pi++
		case pi < len(p) && (p[pi] == "*" || p[pi] == k[ki]):
			pi++
			ki++
		case star >= 0:
			// Let the last '#' swallow one more word and retry after it.
			starK++
			ki = starK
			pi = star + 1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == "#" {
		pi++
	}
	return pi == len(p)
}

// ValidPattern checks a binding pattern: RabbitMQ accepts any string up to
// 255 bytes, so only the length is limited.
func ValidPattern(pattern string) error {
	if len(pattern) > 255 {
		return fmt.Errorf("bus: binding %.20q...: longer than 255 bytes", pattern)
	}
	return nil
}

// ValidKey checks a routing key for Publish: at most 255 bytes (AMQP shortstr).
func ValidKey(key string) error {
	if len(key) > 255 {
		return fmt.Errorf("bus: routing key %.20q...: longer than 255 bytes", key)
	}
	return nil
}
