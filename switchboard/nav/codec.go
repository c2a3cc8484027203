package nav

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// A fast path for the one JSON shape that dominates the bus: a flat object
// of plain ASCII string fields, as nodes publish it. Anything else (escapes,
// non-ASCII, numbers, nested values, unknown or differently cased keys)
// falls back to encoding/json, and FuzzFastEventMatchesJSON checks that
// the fast path never disagrees with it.

// plainASCII reports whether s can be written between quotes in JSON as is,
// byte for byte what json.Marshal writes (which escapes <, > and &).
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendEvent encodes e like json.Marshal does (same field order and
// omissions) when every field is plain ASCII; ok is false otherwise.
func appendEvent(b []byte, e *Event) ([]byte, bool) {
	if !plainASCII(e.ID) || !plainASCII(e.Node) || !plainASCII(e.User) || !plainASCII(e.Product) || !plainASCII(e.Type) || !plainASCII(e.Phone) {
		return b, false
	}
	b = append(b, '{')
	field := func(name, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":"`...)
		b = append(b, v...)
		b = append(b, '"')
	}
	field("id", e.ID, true)
	field("node", e.Node, true)
	field("user", e.User, false)
	field("product", e.Product, true)
	field("type", e.Type, false)
	field("phone", e.Phone, true)
	if e.At != 0 {
		b = append(b, `,"at":`...)
		b = strconv.AppendInt(b, e.At, 10)
	}
	return append(b, '}'), true
}

// fastEvent parses data when it is a flat object of known lowercase keys
// with plain ASCII string values; ok is false for anything else (the
// caller then uses encoding/json).
func fastEvent(data []byte) (Event, bool) {
	sc := scanner{data: data}
	sc.ws()
	e, ok := sc.object()
	sc.ws()
	return e, ok && sc.i == len(data)
}

// fastEvents parses a JSON array of at most max such objects (max > 0);
// ok is false for anything else, including an empty or longer array.
func fastEvents(data []byte, max int) ([]Event, bool) {
	sc := scanner{data: data}
	sc.ws()
	if !sc.byte('[') {
		return nil, false
	}
	out := make([]Event, 0, min(max, len(data)/32+1))
	for {
		sc.ws()
		e, ok := sc.object()
		if !ok || len(out) == max {
			return nil, false
		}
		out = append(out, e)
		sc.ws()
		if sc.byte(',') {
			continue
		}
		if !sc.byte(']') {
			return nil, false
		}
		sc.ws()
		return out, sc.i == len(data)
	}
}

type scanner struct {
	data []byte
	i    int
}

func (sc *scanner) ws() {
	for sc.i < len(sc.data) {
		switch sc.data[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// byte consumes c if it is next.
func (sc *scanner) byte(c byte) bool {
	if sc.i < len(sc.data) && sc.data[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

// str reads a string with no escapes and only printable ASCII.
func (sc *scanner) str() (string, bool) {
	if !sc.byte('"') {
		return "", false
	}
	start := sc.i
	for sc.i < len(sc.data) {
		c := sc.data[sc.i]
		switch {
		case c == '"':
			s := string(sc.data[start:sc.i])
			sc.i++
			return s, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", false
		}
		sc.i++
	}
	return "", false
}

// object reads one flat event object.
func (sc *scanner) object() (e Event, ok bool) {
	if !sc.byte('{') {
		return Event{}, false
	}
	sc.ws()
	if sc.byte('}') {
		return e, true
	}
	for {
		sc.ws()
		k, ok := sc.str()
		if !ok {
			return Event{}, false
		}
		sc.ws()
		if !sc.byte(':') {
			return Event{}, false
		}
		sc.ws()
		if k == "at" {
			n, ok := sc.integer()
			if !ok {
				return Event{}, false
			}
			e.At = n
		} else {
			v, ok := sc.str()
			if !ok {
				return Event{}, false
			}
			if !e.set(k, v) {
				return Event{}, false
			}
		}
		sc.ws()
		if sc.byte(',') {
			continue
		}
		if sc.byte('}') {
			return e, true
		}
		return Event{}, false
	}
}

// set assigns the string field named k (exactly as json tags spell it).
func (e *Event) set(k, v string) bool {
	switch k {
	case "id":
		e.ID = v
	case "node":
		e.Node = v
	case "user":
		e.User = v
	case "product":
		e.Product = v
	case "type":
		e.Type = v
	case "phone":
		e.Phone = v
	default:
		return false
	}
	return true
}

// integer reads a JSON integer that fits an int64 comfortably (at most 18
// digits, no fraction or exponent).
func (sc *scanner) integer() (int64, bool) {
	start := sc.i
	sc.byte('-')
	digits := sc.i
	for sc.i < len(sc.data) && sc.data[sc.i] >= '0' && sc.data[sc.i] <= '9' {
		sc.i++
	}
	n := sc.i - digits
	if n == 0 || n > 18 || (n > 1 && sc.data[digits] == '0') {
		return 0, false
	}
	if sc.i < len(sc.data) && (sc.data[sc.i] == '.' || sc.data[sc.i] == 'e' || sc.data[sc.i] == 'E') {
		return 0, false
	}
	v, err := strconv.ParseInt(string(sc.data[start:sc.i]), 10, 64)
	return v, err == nil
}

// User histories are the bulk of what Flush writes, so they are stored in a
// compact binary form rather than JSON:
//
//	0x01 varint(lastSeen ms) str(phone) uvarint(n) n × (str(id) str(category) varint(last ms))
//
// where str is uvarint(len) and the bytes. loadUser also reads JSON.
const userFormatV1 = 0x01

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeUser(b []byte, u *userHist) []byte {
	b = append(b, userFormatV1)
	b = binary.AppendVarint(b, u.LastSeen)
	b = appendStr(b, u.Phone)
	b = binary.AppendUvarint(b, uint64(len(u.Products)))
	for _, p := range u.Products {
		b = appendStr(b, p.ID)
		b = appendStr(b, p.Category)
		b = binary.AppendVarint(b, p.Last)
	}
	return b
}

var errCorruptUser = errors.New("corrupt user record")

func decodeUser(b []byte) (*userHist, error) {
	if len(b) == 0 || b[0] != userFormatV1 {
		return nil, errCorruptUser
	}
	b = b[1:]
	varint := func() (int64, bool) {
		v, n := binary.Varint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := uvarint()
		if !ok || n > uint64(len(b)) {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	u := &userHist{}
	var ok bool
	if u.LastSeen, ok = varint(); !ok {
		return nil, errCorruptUser
	}
	if u.Phone, ok = str(); !ok {
		return nil, errCorruptUser
	}
	n, ok := uvarint()
	if !ok || n > uint64(len(b)) { // every product takes at least 3 bytes
		return nil, errCorruptUser
	}
	u.Products = make([]viewedProduct, 0, n)
	for range n {
		var p viewedProduct
		if p.ID, ok = str(); !ok {
			return nil, errCorruptUser
		}
		if p.Category, ok = str(); !ok {
			return nil, errCorruptUser
		}
		if p.Last, ok = varint(); !ok {
			return nil, errCorruptUser
		}
		u.Products = append(u.Products, p)
	}
	if len(b) != 0 {
		return nil, errCorruptUser
	}
	return u, nil
}
