package nav

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/protocol"
)

func entries(kv ...any) []protocol.TopEntry {
	out := []protocol.TopEntry{}
	for i := 0; i < len(kv); i += 2 {
		out = append(out, protocol.TopEntry{Product: kv[i].(string), Count: int64(kv[i+1].(int))})
	}
	return out
}

func TestWindowExpiry(t *testing.T) {
	w := newWindow(5*time.Second, time.Second)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w.add("a", at(0))
	w.add("a", at(900))
	w.add("b", at(1000))
	w.add("c", at(4999))
	steps := []struct {
		at   int
		want []protocol.TopEntry
	}{
		{4999, entries("a", 2, "b", 1, "c", 1)},
		{5000, entries("b", 1, "c", 1)}, // the bucket of t=0..999 left
		{5999, entries("b", 1, "c", 1)},
		{6000, entries("c", 1)},
		{8999, entries("c", 1)},
		{9000, entries()}, // buckets are whole seconds: 4.999 s is in the bucket of 4 s
		{3000, entries()}, // a clock going back changes nothing
	}
	for _, s := range steps {
		w.advance(at(s.at))
		if got := w.ranking(10); !reflect.DeepEqual(got, s.want) {
			t.Errorf("at %dms: %v, want %v", s.at, got, s.want)
		}
	}
	// A jump of more than the window empties it in one step.
	w.add("d", at(20000))
	w.advance(at(60000))
	if got := w.ranking(10); len(got) != 0 {
		t.Errorf("after a long jump: %v", got)
	}
}

func TestTickEmitsOnlyOnChange(t *testing.T) {
	c := newClock()
	rec := &recorder{}
	s, _ := newService(t, testOptions(c), rec)
	tops := func(msgs []message) (partials []Partial, stats []string) {
		for _, m := range msgs {
			switch {
			case m.key == KeyTop:
				var p Partial
				if err := json.Unmarshal(m.body, &p); err != nil {
					t.Fatal(err)
				}
				partials = append(partials, p)
			default:
				stats = append(stats, m.key+" "+string(m.body))
			}
		}
		return
	}
	// First tick announces this node (empty ranking).
	p, _ := tops(s.tick(c.Now()))
	if len(p) != 1 || p[0].Node != "n1" || len(p[0].Top) != 0 || p[0].Window != "5s" {
		t.Fatalf("first tick: %+v", p)
	}
	s.Apply(view("u1", "3"), view("u1", "2"), view("u2", "3"))
	p, st := tops(s.tick(c.Add(time.Second)))
	if len(p) != 1 || !reflect.DeepEqual(p[0].Top, entries("3", 2, "2", 1)) {
		t.Fatalf("after views: %+v", p)
	}
	wantStats := []string{
		`stats.product.2 {"product":"2","categories":{"Cameras":1}}`,
		`stats.product.3 {"product":"3","categories":{"Players":1}}`,
	}
	if !reflect.DeepEqual(st, wantStats) {
		t.Errorf("stats = %q, want %q", st, wantStats)
	}
	top, v1 := s.Top()
	if want := entries("3", 2, "2", 1); len(top.Top) != 2 || top.Top[0].Title != "Full HD camcorder" || top.Top[0].Count != 2 || top.Top[1].Product != want[1].Product {
		t.Errorf("top = %+v", top)
	}
	// Nothing changes: no partial until the heartbeat, no stats.
	for i := 1; i < heartbeatTicks; i++ {
		if msgs := s.tick(c.Add(time.Second / 10)); len(msgs) != 0 {
			t.Fatalf("tick %d without change published %v", i, msgs)
		}
	}
	if p, _ := tops(s.tick(c.Add(time.Second / 10))); len(p) != 1 {
		t.Fatalf("heartbeat: %+v", p)
	}
	if _, v := s.Top(); v != v1 {
		t.Errorf("version moved without a change")
	}
	// The views expire 5 s after their bucket.
	c.Add(5 * time.Second)
	p, st = tops(s.tick(c.Now()))
	if len(p) != 1 || len(p[0].Top) != 0 || len(st) != 0 {
		t.Fatalf("after expiry: %+v %v", p, st)
	}
	if top, v := s.Top(); len(top.Top) != 0 || v == v1 {
		t.Errorf("after expiry top = %+v (version %d)", top, v)
	}
	// A repeat view by the same user counts in the window (it is a view)
	// but not in the co-view counters.
	s.Apply(view("u1", "3"))
	p, st = tops(s.tick(c.Add(time.Second)))
	if len(p) != 1 || !reflect.DeepEqual(p[0].Top, entries("3", 1)) || len(st) != 0 {
		t.Errorf("repeat view: %+v %v", p, st)
	}
}

// TestMergeEqualsGlobal splits random views over three windows: the merge of
// the three partial rankings is the ranking of one window with every view.
func TestMergeEqualsGlobal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			global := newWindow(time.Minute, time.Second)
			parts := []*window{newWindow(time.Minute, time.Second), newWindow(time.Minute, time.Second), newWindow(time.Minute, time.Second)}
			now := t0
			for range 2000 {
				now = now.Add(time.Duration(rng.IntN(100)) * time.Millisecond)
				p := fmt.Sprint(rng.IntN(40))
				global.add(p, now)
				parts[rng.IntN(3)].add(p, now)
			}
			var partials []Partial
			for i, w := range parts {
				w.advance(now)
				partials = append(partials, Partial{Node: fmt.Sprint(i), Top: w.ranking(1000)})
			}
			global.advance(now)
			for _, n := range []int{1, 5, 10, 100} {
				if got, want := Merge(partials, n), global.ranking(n); !reflect.DeepEqual(got, want) {
					t.Fatalf("top %d: merged %v, global %v", n, got, want)
				}
			}
		})
	}
}

func TestPeersJoinAndLeave(t *testing.T) {
	c := newClock()
	s, _ := newService(t, testOptions(c), &recorder{})
	peerMsg := func(p Partial) bus.Delivery {
		b, _ := json.Marshal(p)
		return bus.Delivery{Key: KeyTop, Body: b}
	}
	s.Apply(view("u1", "3"))
	ctx := context.Background()
	if err := s.HandleTop(ctx, peerMsg(Partial{Node: "n2", Top: entries("3", 2, "5", 4)})); err != nil {
		t.Fatal(err)
	}
	if err := s.HandleTop(ctx, peerMsg(Partial{Node: "n0", Top: entries("7", 1)})); err != nil {
		t.Fatal(err)
	}
	// Our own partial coming back from the bus is ignored.
	if err := s.HandleTop(ctx, peerMsg(Partial{Node: "n1", Top: entries("9", 100)})); err != nil {
		t.Fatal(err)
	}
	s.tick(c.Now())
	top, _ := s.Top()
	if got := stripTitles(top.Top); !reflect.DeepEqual(got, entries("5", 4, "3", 3, "7", 1)) {
		t.Fatalf("merged = %v", got)
	}
	// Shop-published events (no node) belong to the smallest live node id: n0.
	if s.owns(Event{User: "x", Product: "1", Type: TypeProduct}) {
		t.Error("n1 owns a shop event while n0 is alive")
	}
	// n0 leaves cleanly; n2 goes silent and is dropped after peerTimeout ticks.
	if err := s.HandleTop(ctx, peerMsg(Partial{Node: "n0", Leaving: true})); err != nil {
		t.Fatal(err)
	}
	s.tick(c.Now())
	top, _ = s.Top()
	if got := stripTitles(top.Top); !reflect.DeepEqual(got, entries("5", 4, "3", 3)) {
		t.Fatalf("after n0 left = %v", got)
	}
	if !s.owns(Event{User: "x", Product: "1", Type: TypeProduct}) {
		t.Error("n1 does not own shop events after n0 left")
	}
	for range peerTimeout {
		s.tick(c.Now())
	}
	top, _ = s.Top()
	if got := stripTitles(top.Top); !reflect.DeepEqual(got, entries("3", 1)) {
		t.Fatalf("after n2 timed out = %v", got)
	}
	if err := s.HandleTop(ctx, bus.Delivery{Key: KeyTop, Body: []byte("{")}); !bus.IsPermanent(err) {
		t.Errorf("bad partial: %v, want a permanent error", err)
	}
}

func stripTitles(es []protocol.TopEntry) []protocol.TopEntry {
	out := []protocol.TopEntry{}
	for _, e := range es {
		e.Title = ""
		out = append(out, e)
	}
	return out
}

func TestWindowLateEvents(t *testing.T) {
	w := newWindow(5*time.Second, time.Second)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w.add("a", at(10000))
	w.add("b", at(7500)) // late, but inside the window: its own bucket
	w.add("c", at(5999)) // its bucket (5 s) has left the window at 10 s
	if got := w.ranking(10); !reflect.DeepEqual(got, entries("a", 1, "b", 1)) {
		t.Fatalf("ranking = %v", got)
	}
	w.advance(at(11999))
	if got := w.ranking(10); !reflect.DeepEqual(got, entries("a", 1, "b", 1)) {
		t.Fatalf("at 11.999 s = %v", got)
	}
	w.advance(at(12000)) // b's bucket (7 s) leaves
	if got := w.ranking(10); !reflect.DeepEqual(got, entries("a", 1)) {
		t.Fatalf("at 12 s = %v", got)
	}
}
