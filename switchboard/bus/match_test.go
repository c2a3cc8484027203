package bus

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, key string
		want         bool
	}{
		// The classic RabbitMQ tutorial table.
		{"animals.*.shorthaired", "animals.dogs.poodles", false},
		{"animals.*.shorthaired", "animals.dogs.dachshund", false},
		{"animals.*.shorthaired", "animals.cats.shorthaired", true},
		{"animals.*.shorthaired", "animals.dogs.shorthaired", true},
		{"animals.*.shorthaired", "animals.misc", false},
		{"#", "animals.dogs.poodles", true},
		{"#", "animals.misc", true},
		{"#", "", true},
		{"*.cats.*", "animals.cats.shorthaired", true},
		{"*.cats.*", "animals.dogs.shorthaired", false},
		{"*.cats.*", "animals.misc", false},
		// Edge cases.
		{"*", "", false},
		{"*", "a", true},
		{"*", "a.b", false},
		{"", "", true},
		{"", "a", false},
		{"a.#", "a", true},
		{"a.#", "a.b.c", true},
		{"#.a", "a", true},
		{"#.a", "x.y.a", true},
		{"#.a", "x.y.b", false},
		{"a.#.b", "a.b", true},
		{"a.#.b", "a.x.y.b", true},
		{"a.#.b", "a.x.y.c", false},
		{"#.#", "a", true},
		{"#.*", "", false},
		{"#.*.#", "a.b", true},
		{"a.*.#", "a", false},
		{"a..b", "a..b", true},
		{"a.*.b", "a..b", true},
		{"sms.in.#", "sms.in.15551234567", true},
		{"sms.in.#", "sms.out.15551234567", false},
		{"nav.#", "nav.view.3", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" ~ "+tt.key, func(t *testing.T) {
			if got := Match(tt.pattern, tt.key); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.key, got, tt.want)
			}
			if got := refMatch(tt.pattern, tt.key); got != tt.want {
				t.Errorf("reference(%q, %q) = %v, want %v (reference is wrong)", tt.pattern, tt.key, got, tt.want)
			}
		})
	}
}

// refMatch is the reference for the fuzz test: it turns the pattern into a
// regular expression over the key with a leading dot before every word, so
// that "#" (zero or more words) is simply (\.[^.]*)* and "*" is \.[^.]*.
func refMatch(pattern, key string) bool {
	var re strings.Builder
	re.WriteString("^")
	for _, w := range splitWords(nil, pattern) {
		switch w {
		case "#":
			re.WriteString(`(?:\.[^.]*)*`)
		case "*":
			re.WriteString(`\.[^.]*`)
		default:
			re.WriteString(`\.` + regexp.QuoteMeta(w))
		}
	}
	re.WriteString("$")
	var k strings.Builder
	for _, w := range splitWords(nil, key) {
		k.WriteString("." + w)
	}
	return regexp.MustCompile(re.String()).MatchString(k.String())
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"animals.*.shorthaired", "animals.cats.shorthaired"},
		{"#", "animals.misc"},
		{"*.cats.*", "animals.cats.shorthaired"},
		{"a.#.b.#", "a.x.b.y.b"},
		{"#.*", ""},
		{"a..b", "a..b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, key string) {
		// The regexp reference needs UTF-8; Match itself works on bytes.
		if len(pattern) > 64 || len(key) > 64 || !utf8.ValidString(pattern) || !utf8.ValidString(key) {
			return
		}
		if got, want := Match(pattern, key), refMatch(pattern, key); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", pattern, key, got, want)
		}
	})
}

func TestMatchAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Match("inbound.*.#", "inbound.node-1.a.b.c") }); n != 0 {
		t.Fatalf("Match allocates %v times per call, want 0", n)
	}
}
