package nav

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// server runs a Service behind a real HTTP server on loopback, wired to an
// in-process bus the way the node wires it, with Run ticking.
type server struct {
	*Service
	url string
	bus *bus.Memory
}

func startServer(t testing.TB, opts Options) *server {
	t.Helper()
	b := bus.NewMemory(bus.MemoryOptions{Logger: quietLogger()})
	s, _ := newService(t, opts, b)
	ctx, cancel := context.WithCancel(context.Background())
	for _, sub := range []struct {
		bind string
		h    bus.Handler
	}{{BindView, s.HandleView}, {BindLink, s.HandleView}, {BindTop, s.HandleTop}, {BindCatalog, s.HandleCatalog}} {
		if _, err := b.Subscribe(ctx, bus.SubscribeOptions{Bindings: []string{sub.bind}}, sub.h); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	mux := http.NewServeMux()
	admin := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer admin" {
				http.Error(w, "admin token required", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	s.Register(mux, admin)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
		b.Close()
	})
	return &server{Service: s, url: hs.URL, bus: b}
}

func (s *server) do(t *testing.T, method, path, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPNav(t *testing.T) {
	o := testOptions(newClock())
	o.Now = time.Now // Run ticks on the real clock here
	o.MaxBody = 2048
	o.MaxEvents = 3
	s := startServer(t, o)
	tests := []struct {
		name string
		body string
		code int
	}{
		{"one event", `{"user":"u1","product":"2","type":"PRODUCT","phone":"+15551234567"}`, 202},
		{"batch", `[{"user":"u1","product":"3","type":"PRODUCT"},{"user":"u2","product":"3","type":"PRODUCT"},{"user":"u2","product":"4","type":"PRODUCT"}]`, 202},
		{"other type", `{"user":"u1","type":"SEARCH"}`, 202},
		{"unknown product", `{"user":"u1","product":"999","type":"PRODUCT"}`, 202},
		{"malformed", `{"user":`, 400},
		{"missing product", `{"user":"u1","type":"PRODUCT"}`, 400},
		{"missing user", `[{"product":"3","type":"PRODUCT"}]`, 400},
		{"too many events", `[` + strings.Repeat(`{"user":"u","product":"3","type":"PRODUCT"},`, 3) + `{"user":"u","product":"3","type":"PRODUCT"}]`, 413},
		{"too large", `{"user":"` + strings.Repeat("u", 3000) + `","product":"3","type":"PRODUCT"}`, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := s.do(t, "POST", "/nav", tc.body); code != tc.code {
				t.Fatalf("POST /nav = %d %s, want %d", code, body, tc.code)
			}
		})
	}
	sbt.WaitFor(t, 2*time.Second, "events counted", func() bool {
		c := s.Counters()
		return c.Counted == 4 && c.Unknown == 1 && c.Ignored == 1
	})
	want := map[string]map[string]int64{
		"2": {"Cameras": 1}, "3": {"Players": 1, "Cameras": 1}, "4": {"Cameras": 1},
	}
	for p, w := range want {
		code, body := s.do(t, "GET", "/products/"+p+"/stats", "")
		var st ProductStats
		if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.Product != p || !maps.Equal(st.Categories, w) {
			t.Errorf("GET /products/%s/stats = %d %s, want %v", p, code, body, w)
		}
	}
	if code, body := s.do(t, "GET", "/products/7/stats", ""); code != 200 || strings.TrimSpace(body) != `{"product":"7","categories":{}}` {
		t.Errorf("stats of an unviewed product = %d %s", code, body)
	}
	if code, _ := s.do(t, "GET", "/products/999/stats", ""); code != 404 {
		t.Errorf("stats of an unknown product = %d", code)
	}
	sbt.WaitFor(t, 3*time.Second, "top list", func() bool {
		_, body := s.do(t, "GET", "/stats/top", "")
		return strings.TrimSpace(body) == `{"window":"5s","top":[{"product":"3","title":"Full HD camcorder","count":2},{"product":"2","title":"Media player with USB 2.0 input","count":1},{"product":"4","title":"Waterproof HD camcorder","count":1}]}`
	})
	if f, ok := s.Customer("+15551234567"); !ok || f.Product != "3" {
		t.Errorf("customer frame = %+v %v", f, ok)
	}
}

func TestHTTPCatalog(t *testing.T) {
	o := testOptions(newClock())
	s := startServer(t, o)
	code, body := s.do(t, "GET", "/products", "")
	var ps []Product
	if err := json.Unmarshal([]byte(body), &ps); code != 200 || err != nil || len(ps) != 22 || ps[0].ID != "0" || ps[10].ID != "10" {
		t.Fatalf("GET /products = %d, %d products, err %v", code, len(ps), err)
	}
	if code, body := s.do(t, "GET", "/products/3", ""); code != 200 || strings.TrimSpace(body) != `{"id":"3","title":"Full HD camcorder","category":"Cameras","price":200}` {
		t.Errorf("GET /products/3 = %d %s", code, body)
	}
	auth := []string{"Authorization", "Bearer admin"}
	tests := []struct {
		name, path, body string
		hdr              []string
		code             int
	}{
		{"new product", "/products/drone-1", `{"title":"Camera drone","category":"Drones","price":999}`, auth, 204},
		{"update with id", "/products/3", `{"id":"3","title":"Full HD camcorder","category":"Cameras","price":250}`, auth, 204},
		{"no token", "/products/4", `{"title":"x","category":"y","price":1}`, nil, 401},
		{"id mismatch", "/products/4", `{"id":"5","title":"x","category":"y","price":1}`, auth, 400},
		{"bad id", "/products/a.b", `{"title":"x","category":"y","price":1}`, auth, 400},
		{"no title", "/products/4", `{"category":"y","price":1}`, auth, 400},
		{"negative price", "/products/4", `{"title":"x","category":"y","price":-1}`, auth, 400},
		{"not JSON", "/products/4", `title=x`, auth, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := s.do(t, "PUT", tc.path, tc.body, tc.hdr...); code != tc.code {
				t.Fatalf("PUT %s = %d %s, want %d", tc.path, code, body, tc.code)
			}
		})
	}
	if p, _ := s.Product("drone-1"); p.Category != "Drones" {
		t.Errorf("drone-1 = %+v", p)
	}
	if p, _ := s.Product("3"); p.Price != 250 {
		t.Errorf("3 = %+v", p)
	}
	if code, _ := s.do(t, "GET", "/products/nope", ""); code != 404 {
		t.Errorf("GET unknown product = %d", code)
	}
}

func TestSampleCatalogFlagAndImport(t *testing.T) {
	c := newClock()
	o := testOptions(c)
	o.Sample = false
	s, st := newService(t, o, &recorder{})
	if n := len(s.Products()); n != 0 {
		t.Fatalf("%d products with -nav-sample=false", n)
	}
	n, err := ImportCatalog(st, strings.NewReader(`[{"id":"a","title":"A","category":"X","price":1},{"id":"b","title":"B","category":"Y","price":2}]`))
	if err != nil || n != 2 {
		t.Fatalf("import = %d, %v", n, err)
	}
	// A store with a catalog is not seeded, even with Sample on.
	o.Sample = true
	s2, err := New(o, st, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if ps := s2.Products(); len(ps) != 2 || ps[0].ID != "a" {
		t.Errorf("after import: %+v", ps)
	}
	for _, bad := range []string{`{}`, `[{"id":"a"}]`, `[{"id":"a","title":"A","category":"X"},{"id":"a","title":"A","category":"X"}]`} {
		if _, err := ImportCatalog(st, strings.NewReader(bad)); err == nil {
			t.Errorf("import %s: no error", bad)
		}
	}
}

// TestRedeliveryCountedOnce: a node's event delivered twice (at-least-once
// bus) is applied once.
func TestRedeliveryCountedOnce(t *testing.T) {
	rec := &recorder{}
	s, _ := newService(t, testOptions(newClock()), rec)
	evs := []Event{{User: "a", Product: "2", Type: TypeProduct}, {User: "a", Product: "3", Type: TypeProduct}}
	if err := s.Ingest(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	msgs := rec.take()
	if len(msgs) != 2 || msgs[0].key != "nav.view.2" || msgs[1].key != "nav.view.3" {
		t.Fatalf("published %v", msgs)
	}
	for range 2 {
		for _, m := range msgs {
			if err := s.HandleView(context.Background(), bus.Delivery{Key: m.key, Body: m.body}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c := s.Counters(); c.Counted != 2 || c.Duplicates != 2 {
		t.Errorf("counters = %+v", c)
	}
	if st, _ := s.Stats("2"); st.Categories["Cameras"] != 1 {
		t.Errorf("2 = %v", st.Categories)
	}
	if err := s.HandleView(context.Background(), bus.Delivery{Key: "nav.view.x", Body: []byte(`{"user":""}`)}); !bus.IsPermanent(err) {
		t.Errorf("bad event from the bus: %v, want permanent", err)
	}
}

func TestIngestConcurrentPublish(t *testing.T) {
	o := testOptions(newClock())
	o.PublishConcurrency = 8
	rec := &recorder{}
	s, _ := newService(t, o, rec)
	evs := make([]Event, 100)
	for i := range evs {
		evs[i] = Event{User: "u", Product: fmt.Sprint(i % 22), Type: TypeProduct}
	}
	if err := s.Ingest(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range rec.take() {
		e, err := DecodeEvent(m.body)
		if err != nil || m.key != KeyView(e.Product) || e.Node != "n1" {
			t.Fatalf("published %s %s (%v)", m.key, m.body, err)
		}
		ids[e.ID] = true
	}
	if len(ids) != 100 {
		t.Errorf("%d distinct ids published, want 100", len(ids))
	}
	rec.err = errors.New("broker down")
	if err := s.Ingest(context.Background(), evs); err == nil {
		t.Error("Ingest hid a publish error")
	}
}
