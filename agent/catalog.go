package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	tea "charm.land/bubbletea/v2"
)

// maxCatalogBytes bounds the catalog the client reads (the sample catalog
// is 2 kB; a shop of 20,000 products is about 2 MB).
const maxCatalogBytes = 8 << 20

// catalogMsg is the answer of a catalog fetch.
type catalogMsg struct {
	titles map[string]string // product id → cleaned title
	err    error
}

// CatalogURL derives the node's catalog address (GET /products) from its
// agent WebSocket URL: same host and port, ws becomes http and wss https;
// path, query (which may hold a token) and user info are dropped.
func CatalogURL(wsURL string) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", fmt.Errorf("agent: catalog URL from -url: %w", err)
	}
	scheme := u.Scheme
	switch scheme {
	case "ws":
		scheme = "http"
	case "wss":
		scheme = "https"
	case "http", "https":
	default:
		return "", fmt.Errorf("agent: catalog URL from -url %q: scheme must be ws or wss", u.Redacted())
	}
	if u.Host == "" {
		return "", fmt.Errorf("agent: catalog URL from -url %q: no host", u.Redacted())
	}
	return (&url.URL{Scheme: scheme, Host: u.Host, Path: "/products"}).String(), nil
}

// fetchCatalog starts a catalog request in a command. At most one is in
// flight; it gives up after Config.CatalogTimeout or when the program ends.
func (m *Model) fetchCatalog() tea.Cmd {
	if m.cfg.CatalogURL == "" || m.nav.fetching {
		return nil
	}
	m.nav.fetching, m.nav.fetchedAt = true, m.cfg.Now()
	client, u, timeout, done := m.cfg.HTTPClient, m.cfg.CatalogURL, m.cfg.CatalogTimeout, m.cfg.Done
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if done != nil {
			stop := make(chan struct{})
			defer close(stop) // runs before cancel: the watcher ends with the request
			go func() {
				select {
				case <-done:
					cancel()
				case <-stop:
				}
			}()
		}
		titles, err := getCatalog(ctx, client, u)
		return catalogMsg{titles: titles, err: err}
	}
}

// getCatalog reads GET u: a JSON array of products, as the node serves it.
func getCatalog(ctx context.Context, client *http.Client, u string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("agent: get catalog: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent: get catalog: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // let the connection be reused
		return nil, fmt.Errorf("agent: get catalog %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCatalogBytes+1))
	if err != nil {
		return nil, fmt.Errorf("agent: get catalog %s: %w", u, err)
	}
	if len(body) > maxCatalogBytes {
		return nil, fmt.Errorf("agent: get catalog %s: larger than %d bytes", u, maxCatalogBytes)
	}
	titles, err := decodeCatalog(body)
	if err != nil {
		return nil, fmt.Errorf("agent: get catalog %s: %w", u, err)
	}
	return titles, nil
}

var errCatalogShape = errors.New("catalog is not a JSON array of products")

// decodeCatalog maps product ids to titles made safe for the screen.
// Entries without an id or a title are skipped; other fields are ignored.
func decodeCatalog(b []byte) (map[string]string, error) {
	var ps []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("%w: %v", errCatalogShape, err)
	}
	titles := make(map[string]string, len(ps))
	for _, p := range ps {
		if t := cleanTitle(p.Title); p.ID != "" && t != "" {
			titles[p.ID] = t
		}
	}
	return titles, nil
}

// catalogLoaded merges a fetched catalog into the titles; on failure the
// pane keeps what it has (titles from the top list, else product ids).
func (m *Model) catalogLoaded(msg catalogMsg) {
	m.nav.fetching = false
	if msg.err != nil {
		m.log.Warn("product catalog unavailable; showing product ids", "err", msg.err)
		return
	}
	for id, t := range msg.titles {
		m.nav.titles[id] = t
	}
	m.log.Info("product catalog loaded", "products", len(msg.titles))
}
