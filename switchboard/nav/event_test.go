package nav

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeEvents(t *testing.T) {
	long := strings.Repeat("x", MaxUserLen+1)
	tests := []struct {
		name string
		body string
		n    int   // events decoded when ok
		err  error // nil = ok
	}{
		{"one event", `{"user":"u-59c3","product":"3","type":"PRODUCT","phone":"+15551234567"}`, 1, nil},
		{"array", `[{"user":"a","product":"3","type":"PRODUCT"},{"user":"b","product":"4","type":"PRODUCT"}]`, 2, nil},
		{"other type without product", `{"user":"a","type":"SEARCH"}`, 1, nil},
		{"other type with product", `{"user":"a","product":"3","type":"CART"}`, 1, nil},
		{"unknown fields are fine", `{"user":"a","product":"3","type":"PRODUCT","ts":12}`, 1, nil},
		{"whitespace around", " \n{\"user\":\"a\",\"product\":\"3\",\"type\":\"PRODUCT\"}\n", 1, nil},
		{"empty body", ``, 0, ErrBadEvent},
		{"not JSON", `user=a`, 0, ErrBadEvent},
		{"truncated", `{"user":"a","product":"3"`, 0, ErrBadEvent},
		{"trailing data", `{"user":"a","product":"3","type":"PRODUCT"} x`, 0, ErrBadEvent},
		{"two objects", `{"user":"a","product":"3","type":"PRODUCT"}{"user":"a","product":"3","type":"PRODUCT"}`, 0, ErrBadEvent},
		{"string", `"hello"`, 0, ErrBadEvent},
		{"empty array", `[]`, 0, ErrBadEvent},
		{"null in array", `[null]`, 0, ErrBadEvent},
		{"missing user", `{"product":"3","type":"PRODUCT"}`, 0, ErrBadEvent},
		{"missing type", `{"user":"a","product":"3"}`, 0, ErrBadEvent},
		{"PRODUCT without product", `{"user":"a","type":"PRODUCT"}`, 0, ErrBadEvent},
		{"product is a number", `{"user":"a","product":3,"type":"PRODUCT"}`, 0, ErrBadEvent},
		{"product with a dot", `{"user":"a","product":"3.4","type":"PRODUCT"}`, 0, ErrBadEvent},
		{"product with a wildcard", `{"user":"a","product":"#","type":"PRODUCT"}`, 0, ErrBadEvent},
		{"user too long", `{"user":"` + long + `","product":"3","type":"PRODUCT"}`, 0, ErrBadEvent},
		{"user with a control char", `{"user":"a\u0001","product":"3","type":"PRODUCT"}`, 0, ErrBadEvent},
		{"bad phone", `{"user":"a","product":"3","type":"PRODUCT","phone":"call me"}`, 0, ErrBadEvent},
		{"one bad event refuses the batch", `[{"user":"a","product":"3","type":"PRODUCT"},{"user":"","product":"3","type":"PRODUCT"}]`, 0, ErrBadEvent},
		{"invalid UTF-8", "{\"user\":\"\xff\",\"product\":\"3\",\"type\":\"PRODUCT\"}", 0, ErrBadEvent},
		{"too many", `[` + strings.Repeat(`{"user":"a","product":"3","type":"PRODUCT"},`, 4) + `{"user":"a","product":"3","type":"PRODUCT"}]`, 0, ErrTooMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := DecodeEvents([]byte(tc.body), 4)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if len(evs) != tc.n {
				t.Fatalf("%d events, want %d", len(evs), tc.n)
			}
		})
	}
	evs, err := DecodeEvents([]byte(`{"user":"a","product":"3","type":"PRODUCT","phone":"+1 (555) 123-4567"}`), 0)
	if err != nil || evs[0].Phone != "+15551234567" {
		t.Errorf("phone not normalized: %+v %v", evs, err)
	}
}

func TestCountTopLevel(t *testing.T) {
	for body, want := range map[string]int{
		`[]`:                  0,
		`[ ]`:                 0,
		`[1]`:                 1,
		`[{"a":[1,2,3]},{}]`:  2,
		`[",,,",{"b":"],["}]`: 2,
		`["\",", 1, 2]`:       3,
	} {
		if got := countTopLevel([]byte(body)); got != want {
			t.Errorf("countTopLevel(%s) = %d, want %d", body, got, want)
		}
	}
}

// FuzzDecodeEvents: the decoder never panics, and whatever it accepts is
// valid and survives a round trip through the bus decoder.
func FuzzDecodeEvents(f *testing.F) {
	for _, s := range []string{
		`{"user":"u-59c3","product":"3","type":"PRODUCT","phone":"+15551234567"}`,
		`[{"user":"a","product":"3","type":"PRODUCT"},{"user":"b","type":"X"}]`,
		`[]`, `{`, `[null]`, `{"user":1}`, `["\",",{}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := DecodeEvents(data, 100)
		if err != nil {
			if !errors.Is(err, ErrBadEvent) && !errors.Is(err, ErrTooMany) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(evs) == 0 || len(evs) > 100 {
			t.Fatalf("%d events accepted", len(evs))
		}
		for _, e := range evs {
			if e.User == "" || e.Type == "" || (e.Type == TypeProduct && !ValidID(e.Product)) {
				t.Fatalf("invalid event accepted: %+v", e)
			}
			b, err := jsonMarshal(e)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeEvent(b)
			if err != nil || back != e {
				t.Fatalf("round trip: %+v -> %+v (%v)", e, back, err)
			}
		}
	})
}
