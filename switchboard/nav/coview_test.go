package nav

import (
	"maps"
	"reflect"
	"testing"
	"time"
)

// Sample catalog categories: 0-2 Players, 3-6 Cameras, 7-9 Phones,
// 10-12 Memory, 13-15 Covers.
type counts map[string]map[string]int64

func TestCoviewScripts(t *testing.T) {
	tests := []struct {
		name    string
		events  []Event
		restart int // apply events[:restart], restart, then the rest; 0 = no restart
		want    counts
		unknown uint64
		ignored uint64
	}{
		{
			name:   "one user, two products",
			events: []Event{view("a", "2"), view("a", "3")},
			want:   counts{"2": {"Cameras": 1}, "3": {"Players": 1}},
		},
		{
			name:   "contract example",
			events: []Event{view("a", "2"), view("a", "3"), view("b", "4"), view("b", "2"), view("c", "1"), view("c", "2")},
			want: counts{
				"2": {"Cameras": 2, "Players": 1},
				"3": {"Players": 1},
				"4": {"Players": 1},
				"1": {"Players": 1},
			},
		},
		{
			name:   "repeat views change nothing",
			events: []Event{view("a", "2"), view("a", "3"), view("a", "2"), view("a", "3"), view("a", "3")},
			want:   counts{"2": {"Cameras": 1}, "3": {"Players": 1}},
		},
		{
			name:   "three products: every pair both ways",
			events: []Event{view("a", "0"), view("a", "3"), view("a", "10")},
			want: counts{
				"0":  {"Cameras": 1, "Memory": 1},
				"3":  {"Players": 1, "Memory": 1},
				"10": {"Players": 1, "Cameras": 1},
			},
		},
		{
			name:   "same category counts too",
			events: []Event{view("a", "3"), view("a", "4")},
			want:   counts{"3": {"Cameras": 1}, "4": {"Cameras": 1}},
		},
		{
			name:   "users are independent",
			events: []Event{view("a", "2"), view("b", "3"), view("c", "2"), view("c", "2")},
			want:   counts{},
		},
		{
			name: "unknown products and other types are skipped",
			events: []Event{
				view("a", "2"), view("a", "999"),
				{User: "a", Product: "3", Type: "CART", Node: "n1"},
				{User: "a", Type: "SEARCH", Node: "n1"},
				view("a", "7"),
			},
			want:    counts{"2": {"Phones": 1}, "7": {"Players": 1}},
			unknown: 1,
			ignored: 2,
		},
		{
			name:    "restart between first and repeat views",
			events:  []Event{view("a", "2"), view("a", "3"), view("b", "3"), view("a", "2"), view("a", "3"), view("b", "8"), view("a", "8")},
			restart: 3,
			want: counts{
				"2": {"Cameras": 1, "Phones": 1},
				"3": {"Players": 1, "Phones": 2},
				"8": {"Cameras": 2, "Players": 1},
			},
		},
		{
			name: "duplicate ids are applied once",
			events: []Event{
				{ID: "x1", User: "a", Product: "2", Type: TypeProduct, Node: "n1"},
				{ID: "x2", User: "a", Product: "3", Type: TypeProduct, Node: "n1"},
				{ID: "x2", User: "a", Product: "3", Type: TypeProduct, Node: "n1"},
			},
			want: counts{"2": {"Cameras": 1}, "3": {"Players": 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			dir := t.TempDir()
			st := openStore(t, dir)
			s, err := New(testOptions(c), st, &recorder{})
			if err != nil {
				t.Fatal(err)
			}
			events := tc.events
			if tc.restart > 0 {
				s.Apply(events[:tc.restart]...)
				events = events[tc.restart:]
				s.Flush()
				st.Close()
				st = openStore(t, dir)
				if s, err = New(testOptions(c), st, &recorder{}); err != nil {
					t.Fatal(err)
				}
			}
			defer st.Close()
			s.Apply(events...)
			got := counts{}
			for _, p := range s.Products() {
				if st, _ := s.Stats(p.ID); len(st.Categories) > 0 {
					got[p.ID] = st.Categories
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("counts\n got %v\nwant %v", got, tc.want)
			}
			ct := s.Counters()
			if tc.restart == 0 && (ct.Unknown != tc.unknown || ct.Ignored != tc.ignored) {
				t.Errorf("unknown, ignored = %d, %d; want %d, %d", ct.Unknown, ct.Ignored, tc.unknown, tc.ignored)
			}
			// Everything flushed survives a restart exactly.
			s.Flush()
			st.Close()
			st = openStore(t, dir)
			defer st.Close()
			s2, err := New(testOptions(c), st, &recorder{})
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range tc.want {
				if got, _ := s2.Stats(p); !maps.Equal(got.Categories, want) {
					t.Errorf("after restart: %s = %v, want %v", p, got.Categories, want)
				}
			}
		})
	}
}

func TestHistoryBoundAndExpiry(t *testing.T) {
	c := newClock()
	o := testOptions(c)
	o.MaxProductsPerUser = 2
	o.UserTTL = time.Hour
	s, _ := newService(t, o, &recorder{})
	s.Apply(view("a", "0"), view("a", "3")) // 0↔3
	s.Apply(view("a", "7"))                 // 7 with 0 and 3; 0 forgotten
	s.Apply(view("a", "0"))                 // counts again, with 3 and 7
	want := counts{
		"0": {"Cameras": 2, "Phones": 2}, // 0 was forgotten, so 0↔3 and 0↔7 count again
		"3": {"Players": 2, "Phones": 1},
		"7": {"Players": 2, "Cameras": 1},
	}
	for p, w := range want {
		if got, _ := s.Stats(p); !maps.Equal(got.Categories, w) {
			t.Errorf("%s = %v, want %v", p, got.Categories, w)
		}
	}
	if n := s.Counters().Users; n != 1 {
		t.Fatalf("users = %d", n)
	}
	c.Add(30 * time.Minute)
	s.Apply(view("b", "1"))
	c.Add(31 * time.Minute)
	s.Sweep(c.Now())
	if n := s.Counters().Users; n != 1 {
		t.Fatalf("after sweep users = %d, want 1 (a expired, b kept)", n)
	}
	// a starts over: its old products no longer pair with new views.
	s.Apply(view("a", "10"))
	if got, _ := s.Stats("10"); len(got.Categories) != 0 {
		t.Errorf("10 = %v, want nothing (a's history expired)", got.Categories)
	}
}

func TestCustomerFrame(t *testing.T) {
	c := newClock()
	s, _ := newService(t, testOptions(c), &recorder{})
	e := view("u1", "2")
	e.Phone = "+15551234567"
	s.Apply(e)
	c.Add(time.Second)
	s.Apply(view("u1", "3"))
	c.Add(time.Second)
	s.Apply(view("u2", "3"), view("u2", "4"))
	f, ok := s.Customer("+15551234567")
	if !ok {
		t.Fatal("no frame for the linked phone")
	}
	if f.Product != "3" || !reflect.DeepEqual(f.Viewed, []string{"3", "2"}) || !maps.Equal(f.Categories, map[string]int64{"Players": 1, "Cameras": 1}) {
		t.Errorf("frame = %+v", f)
	}
	if _, ok := s.Customer("+15550000000"); ok {
		t.Error("frame for an unknown phone")
	}
	if got := s.ActiveCustomers(); len(got) != 1 || got[0].Phone != "+15551234567" {
		t.Errorf("active = %+v", got)
	}
}
