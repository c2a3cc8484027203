package udpstats

import (
	"bytes"
	"math"
	"strconv"
	"unsafe"
)

// Tag is one DogStatsD tag: "key:value", or "key" alone with Value "".
type Tag struct{ Key, Value string }

// Metric is one decoded StatsD value. Its strings point into the datagram
// being parsed: they are valid only during the callback that receives the
// Metric, and must be copied (strings.Clone) to be kept.
type Metric struct {
	Name string
	// Value is the number sent; for a relative gauge ("+3", "-2") it carries
	// the sign and Sign says it is relative. Sets may carry non-numbers:
	// Value is then 0 and Raw holds the member.
	Value float64
	Raw   string // the value exactly as sent
	// Type is "c" (counter), "g" (gauge), "ms" (timer), "h" (histogram),
	// "d" (distribution) or "s" (set).
	Type       string
	SampleRate float64 // from "|@0.1"; 1 when absent
	Tags       []Tag   // from "|#k:v,k2"; reused between lines
	Sign       byte    // '+' or '-' for a relative gauge, else 0
}

// Tag returns the value of the first tag called key.
func (m *Metric) Tag(key string) (string, bool) {
	for _, t := range m.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// Decoder parses datagrams, reusing its scratch space. It is not safe for
// concurrent use; the zero Decoder is ready.
type Decoder struct {
	tags []Tag
}

// ParseDatagram parses b with a fresh Decoder; see Decoder.Parse.
func ParseDatagram(b []byte, fn func(Metric)) (bad int) {
	var d Decoder
	return d.Parse(b, fn)
}

// Parse calls fn for every value in b, a datagram of newline-separated
// StatsD lines ("name:value|type[|@rate][|#tags]", DogStatsD multi-value
// "name:1:2|ms" gives one call per value), and returns the number of
// malformed lines, which are skipped. Empty lines, DogStatsD events and
// service checks ("_e{", "_sc|") and unknown "|x" sections are ignored, not
// malformed. Parse never panics and, after the first datagram with tags,
// does not allocate. b must not change while Parse runs.
func (d *Decoder) Parse(b []byte, fn func(Metric)) (bad int) {
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 || bytes.HasPrefix(line, []byte("_e{")) || bytes.HasPrefix(line, []byte("_sc|")) {
			continue
		}
		if !d.parseLine(line, fn) {
			bad++
		}
	}
	return bad
}

// str views b as a string without copying; see Metric.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (d *Decoder) parseLine(line []byte, fn func(Metric)) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || bytes.IndexByte(line[:colon], '|') >= 0 {
		return false
	}
	m := Metric{Name: str(line[:colon]), SampleRate: 1}
	rest := line[colon+1:]
	pipe := bytes.IndexByte(rest, '|')
	if pipe < 0 {
		return false
	}
	values := rest[:pipe]
	sections := rest[pipe+1:]

	typ := sections
	if i := bytes.IndexByte(sections, '|'); i >= 0 {
		typ, sections = sections[:i], sections[i+1:]
	} else {
		sections = nil
	}
	switch string(typ) { // no allocation: the compiler compares in place
	case "c":
		m.Type = "c"
	case "g":
		m.Type = "g"
	case "ms":
		m.Type = "ms"
	case "h":
		m.Type = "h"
	case "d":
		m.Type = "d"
	case "s":
		m.Type = "s"
	default:
		return false
	}

	d.tags = d.tags[:0]
	for len(sections) > 0 {
		sec := sections
		if i := bytes.IndexByte(sections, '|'); i >= 0 {
			sec, sections = sections[:i], sections[i+1:]
		} else {
			sections = nil
		}
		if len(sec) == 0 {
			continue
		}
		switch sec[0] {
		case '@':
			r, err := strconv.ParseFloat(str(sec[1:]), 64)
			if err != nil || !(r > 0 && r <= 1) {
				return false
			}
			m.SampleRate = r
		case '#':
			for tags := sec[1:]; len(tags) > 0; {
				t := tags
				if i := bytes.IndexByte(tags, ','); i >= 0 {
					t, tags = tags[:i], tags[i+1:]
				} else {
					tags = nil
				}
				if len(t) == 0 {
					continue
				}
				if i := bytes.IndexByte(t, ':'); i >= 0 {
					d.tags = append(d.tags, Tag{Key: str(t[:i]), Value: str(t[i+1:])})
				} else {
					d.tags = append(d.tags, Tag{Key: str(t)})
				}
			}
		default:
			// "c:container", "T<timestamp>", "e:..." and future fields.
		}
	}
	m.Tags = d.tags

	// Check every value before calling fn: a line is used whole or not at all.
	for pass := 0; pass < 2; pass++ {
		for vs := values; ; {
			v := vs
			i := bytes.IndexByte(vs, ':')
			if i >= 0 {
				v, vs = vs[:i], vs[i+1:]
			}
			if !d.value(&m, v) {
				return false
			}
			if pass == 1 {
				fn(m)
			}
			if i < 0 {
				break
			}
		}
	}
	return true
}

func (d *Decoder) value(m *Metric, v []byte) bool {
	if len(v) == 0 {
		return false
	}
	m.Raw, m.Sign, m.Value = str(v), 0, 0
	if m.Type == "s" {
		if f, err := strconv.ParseFloat(str(v), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			m.Value = f
		}
		return true
	}
	f, err := strconv.ParseFloat(str(v), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return false
	}
	if m.Type == "g" && (v[0] == '+' || v[0] == '-') {
		m.Sign = v[0]
	}
	m.Value = f
	return true
}
