package httpbody

import (
	"errors"
	"net/url"
	"strings"
)

// ParseForm decodes an application/x-www-form-urlencoded body as
// url.ParseQuery does (the same values, in the same order, and an error
// whenever it gives one), with fewer allocations: the values' slices share
// one array and the map is sized once. A webhook is about a dozen fields,
// each of which cost url.ParseQuery a slice, and growing its map a few
// more (issue 22).
func ParseForm(body string) (url.Values, error) {
	n := strings.Count(body, "&") + 1
	if n > maxParams {
		return url.Values{}, errTooMany
	}
	m := make(url.Values, n)
	vals := make([]string, 0, n) // every first value; never grown, so slices of it stay put
	var err error
	for body != "" {
		var pair string
		pair, body, _ = strings.Cut(body, "&")
		if strings.Contains(pair, ";") {
			err = cmpErr(err, errSemicolon)
			continue
		}
		if pair == "" {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(key)
		if kerr != nil {
			err = cmpErr(err, kerr)
			continue
		}
		value, verr := url.QueryUnescape(value)
		if verr != nil {
			err = cmpErr(err, verr)
			continue
		}
		if old, ok := m[key]; ok {
			m[key] = append(old, value) // a repeated name: its own array from here on
			continue
		}
		vals = append(vals, value)
		m[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return m, err
}

// url.ParseQuery's errors for a semicolon in a pair and for too many pairs
// (maxParams is its limit by default: GODEBUG urlmaxqueryparams).
var (
	errSemicolon = errors.New("invalid semicolon separator in query")
	errTooMany   = errors.New("number of URL query parameters exceeded limit")
)

const maxParams = 10000

func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}
