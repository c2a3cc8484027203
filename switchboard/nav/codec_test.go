package nav

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestFastEvent(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{`{"user":"a","product":"3","type":"PRODUCT"}`, true},
		{` { "id" : "x" , "node":"n1","user":"a","product":"3","type":"PRODUCT","phone":"+15551234567" } `, true},
		{`{}`, true},
		{`{"user":"a\"b"}`, false},          // escape: encoding/json decides
		{`{"user":"é"}`, false},             // non-ASCII
		{`{"USER":"a"}`, false},             // encoding/json matches keys case-insensitively
		{`{"user":"a","extra":"x"}`, false}, // unknown key
		{`{"user":1}`, false},
		{`{"user":"a",}`, false},
		{`{"user":"a"} x`, false},
		{`{"user":"a"`, false},
		{`[]`, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			e, ok := fastEvent([]byte(tc.in))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok {
				var want Event
				if err := json.Unmarshal([]byte(tc.in), &want); err != nil || want != e {
					t.Fatalf("fast %+v, encoding/json %+v (%v)", e, want, err)
				}
			}
		})
	}
}

// FuzzFastEventMatchesJSON: whenever the fast path accepts, encoding/json
// accepts and decodes the same event; appendEvent writes what json.Marshal
// writes.
func FuzzFastEventMatchesJSON(f *testing.F) {
	for _, s := range []string{
		`{"user":"a","product":"3","type":"PRODUCT"}`,
		`{"id":"n1-x-1","node":"n1","user":"u-59c3","product":"3","type":"PRODUCT","phone":"+15551234567"}`,
		`{}`, `{"user":"a","user":"b"}`, ` {"type" :"X"}`,
		`[{"user":"a","product":"3","type":"PRODUCT"}, {"user":"b"}]`, `[]`, `[{},{},{},{},{},{}]`,
		`{"user":"a","at":1732200000000}`, `{"at":-0}`, `{"at":01}`, `{"at":1.5}`, `{"at":1e3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, ok := fastEvent(data)
		if ok {
			var want Event
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("fast path accepted what encoding/json refuses (%v): %q", err, data)
			}
			if want != e {
				t.Fatalf("fast %+v, encoding/json %+v", e, want)
			}
		}
		if evs, ok := fastEvents(data, 5); ok {
			var want []Event
			if err := json.Unmarshal(data, &want); err != nil || len(want) != len(evs) || len(evs) == 0 || len(evs) > 5 {
				t.Fatalf("fast array %+v, encoding/json %+v (%v)", evs, want, err)
			}
			for i := range evs {
				if evs[i] != want[i] {
					t.Fatalf("fast array %+v, encoding/json %+v", evs, want)
				}
			}
		}
		var ev Event
		if json.Unmarshal(data, &ev) == nil {
			got, ok := appendEvent(nil, &ev)
			want, _ := json.Marshal(ev)
			if ok && string(got) != string(want) {
				t.Fatalf("appendEvent %s, json.Marshal %s", got, want)
			}
		}
	})
}

func TestUserRecord(t *testing.T) {
	u := &userHist{LastSeen: 1732200000123, Phone: "+15551234567", Products: []viewedProduct{{"3", "Cameras", 1732200000000}, {"drone-1", "Drönes", -5}}}
	got, err := decodeUser(encodeUser(nil, u))
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	empty, err := decodeUser(encodeUser(nil, &userHist{}))
	if err != nil || empty.LastSeen != 0 || len(empty.Products) != 0 {
		t.Fatalf("empty = %+v, %v", empty, err)
	}
	b := encodeUser(nil, u)
	for i := range len(b) {
		if _, err := decodeUser(b[:i]); err == nil {
			t.Errorf("truncated at %d decoded", i)
		}
	}
	if _, err := decodeUser(append(b, 0)); err == nil {
		t.Error("trailing byte decoded")
	}
}

func FuzzDecodeUser(f *testing.F) {
	f.Add(encodeUser(nil, &userHist{LastSeen: 5, Phone: "+1555", Products: []viewedProduct{{"3", "C", 1}}}))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := decodeUser(b)
		if err != nil {
			return
		}
		if again := encodeUser(nil, u); string(again) != string(b) {
			// Varints have one canonical form when produced by the encoder;
			// a non-canonical input may decode, but must re-decode the same.
			u2, err := decodeUser(again)
			if err != nil || !reflect.DeepEqual(u, u2) {
				t.Fatalf("re-encode differs: %+v vs %+v (%v)", u, u2, err)
			}
		}
	})
}
