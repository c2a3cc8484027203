package agent

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/switchboard/switchboard/agent/agenttest"
	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
)

func TestCatalogURL(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "ws://127.0.0.1:8080/agent", want: "http://127.0.0.1:8080/products"},
		{in: "wss://sb.example.com/agent", want: "https://sb.example.com/products"},
		{in: "wss://sb.example.com:8443/agent?token=secret#x", want: "https://sb.example.com:8443/products"},
		{in: "ws://user:pw@[::1]:9000/agent", want: "http://[::1]:9000/products"},
		{in: "WS://Host:1/agent", want: "http://Host:1/products"},
		{in: "http://127.0.0.1:8080/agent", want: "http://127.0.0.1:8080/products"},
		{in: "ftp://127.0.0.1/agent", err: true},
		{in: "ws:///agent", err: true},
		{in: "127.0.0.1:8080", err: true},
		{in: "", err: true},
		{in: "ws://bad host/agent", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := CatalogURL(tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("CatalogURL(%q) = %q, want an error", tc.in, got)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), ":pw@") {
					t.Fatalf("error shows a secret: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CatalogURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestGetCatalog(t *testing.T) {
	s := agenttest.New(t)
	s.SetProducts(
		agenttest.Product{ID: "3", Title: "Full HD camcorder", Category: "Cameras", Price: 200},
		agenttest.Product{ID: "7", Title: "Compact\x1b[2J camera", Category: "Cameras", Price: 90},
		agenttest.Product{ID: "", Title: "no id"},
		agenttest.Product{ID: "9", Title: ""},
	)
	u, err := CatalogURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	titles, err := getCatalog(ctx, http.DefaultClient, u)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"3": "Full HD camcorder", "7": "Compact\uFFFD[2J camera"}; !maps.Equal(titles, want) {
		t.Fatalf("titles %q, want %q", titles, want)
	}

	s.FailProducts(http.StatusServiceUnavailable)
	if _, err := getCatalog(ctx, http.DefaultClient, u); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("503: err = %v", err)
	}

	bad := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL + "/products"
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"not JSON", bad(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }), "not a JSON array"},
		{"an object", bad(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"id":"3"}`)) }), "not a JSON array"},
		{"too large", bad(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("["))
			w.Write([]byte(strings.Repeat(" ", maxCatalogBytes)))
			w.Write([]byte("]"))
		}), "larger than"},
		{"unreachable", closed.URL + "/products", "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := getCatalog(ctx, http.DefaultClient, tc.url)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "agent: get catalog") {
				t.Fatalf("err = %v, want one about %q", err, tc.want)
			}
		})
	}
}

// collect runs cmd synchronously, as a program would, and returns the
// messages it produces (batches expanded).
func collect(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	switch msg := cmd().(type) {
	case nil:
		return nil
	case tea.BatchMsg:
		var out []tea.Msg
		for _, c := range msg {
			out = append(out, collect(c)...)
		}
		return out
	default:
		return []tea.Msg{msg}
	}
}

// The model fetches the catalog from the fake node on connect and on every
// reconnect, and keeps its titles when a later fetch fails.
func TestModelFetchesCatalogOnConnect(t *testing.T) {
	s := agenttest.New(t)
	s.SetProducts(agenttest.Product{ID: "3", Title: "Full HD camcorder"}, agenttest.Product{ID: "7", Title: "Compact camera"})
	u, err := CatalogURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, false)
	f.m.cfg.CatalogURL = u
	assign(f, p1, msg("a1", p1, protocol.In, "hello", time.Minute))
	f.frame(custStats(p1, "3", nil, "3", "7", "8"))
	requireLines(t, pane(t, f.m)[2:], []string{"  #3", "  #7", "  #8"})

	connect := func() {
		t.Helper()
		_, cmd := f.m.Update(EventMsg(wsclient.Event{Kind: wsclient.Connected}))
		for _, msg := range collect(cmd) {
			if _, ok := msg.(catalogMsg); !ok {
				t.Fatalf("connect produced %T", msg)
			}
			f.m.Update(msg)
		}
	}
	connect()
	if n := s.ProductRequests(); n != 1 {
		t.Fatalf("%d catalog requests after connect, want 1", n)
	}
	requireLines(t, pane(t, f.m)[2:], []string{"  Full HD camcorder", "  Compact camera", "  #8"})

	s.SetProducts(agenttest.Product{ID: "3", Title: "Full HD camcorder"}, agenttest.Product{ID: "8", Title: "Action camera"})
	f.update(EventMsg(wsclient.Event{Kind: wsclient.Disconnected}))
	connect()
	if n := s.ProductRequests(); n != 2 {
		t.Fatalf("%d catalog requests after reconnect, want 2", n)
	}
	requireLines(t, pane(t, f.m)[2:], []string{"  Full HD camcorder", "  Compact camera", "  Action camera"})

	s.FailProducts(http.StatusInternalServerError)
	connect()
	if n := s.ProductRequests(); n != 3 {
		t.Fatalf("%d catalog requests, want 3", n)
	}
	requireLines(t, pane(t, f.m)[2:], []string{"  Full HD camcorder", "  Compact camera", "  Action camera"})
}

// A fetch in flight ends when the program does.
func TestCatalogFetchStopsWithTheProgram(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	done := make(chan struct{})
	m, err := NewModel(Config{Conn: &recConn{}, Done: done, CatalogURL: srv.URL + "/products"})
	if err != nil {
		t.Fatal(err)
	}
	_, cmd := m.Update(EventMsg(wsclient.Event{Kind: wsclient.Connected}))
	got := make(chan []tea.Msg, 1)
	go func() { got <- collect(cmd) }()
	close(done)
	select {
	case msgs := <-got:
		if len(msgs) != 1 || msgs[0].(catalogMsg).err == nil {
			t.Fatalf("got %v, want a failed catalogMsg", msgs)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the catalog fetch did not stop with the program")
	}
}

func FuzzDecodeCatalog(f *testing.F) {
	f.Add([]byte(`[{"id":"3","title":"Full HD camcorder","category":"Cameras","price":200}]`))
	f.Add([]byte(`[{"id":"3","title":"a\u001b[2Jb\u009b"},{"id":"","title":"x"}]`))
	f.Add([]byte(`{"id":"3"}`))
	f.Add([]byte(`[{"id":"3","title":"` + strings.Repeat("é", 300) + `"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		titles, err := decodeCatalog(b)
		if err != nil {
			return
		}
		for id, title := range titles {
			if id == "" || title == "" {
				t.Fatalf("entry %q: %q kept", id, title)
			}
			if len(title) > maxTitle*3 {
				t.Fatalf("title of %d bytes kept", len(title))
			}
			for _, r := range title {
				if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
					t.Fatalf("control character %U in title %q", r, title)
				}
			}
		}
	})
}
