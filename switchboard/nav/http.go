package nav

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/switchboard/switchboard/switchboard/internal/httpbody"
)

// Register adds the navigation routes to mux. admin wraps the handlers that
// need the admin bearer token (PUT /products/{id}).
//
//	POST /nav                     one event or an array → 202 {"accepted":n}
//	GET  /products                the catalog
//	GET  /products/{id}           one product
//	PUT  /products/{id}           admin; product JSON → 204
//	GET  /products/{id}/stats     {"product":"2","categories":{"Players":1}}
//	GET  /stats/top               {"window":"5m0s","top":[...]}
func (s *Service) Register(mux *http.ServeMux, admin func(http.HandlerFunc) http.HandlerFunc) {
	mux.HandleFunc("POST /nav", s.handleNav)
	mux.HandleFunc("GET /products", s.handleProducts)
	mux.HandleFunc("GET /products/{id}", s.handleProduct)
	mux.HandleFunc("PUT /products/{id}", admin(s.handlePutProduct))
	mux.HandleFunc("GET /products/{id}/stats", s.handleStats)
	mux.HandleFunc("GET /stats/top", s.handleTop)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *Service) handleNav(w http.ResponseWriter, r *http.Request) {
	body, ok := httpbody.Read(w, r, s.opts.MaxBody)
	if !ok {
		return
	}
	events, err := DecodeEvents(body, s.opts.MaxEvents)
	switch {
	case errors.Is(err, ErrTooMany):
		http.Error(w, err.Error()+" in one POST /nav (the limit is -nav-max-events, SWITCHBOARD_NAV_MAX_EVENTS)", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := s.Ingest(r.Context(), events); err != nil {
		// Some events may have been published: they are counted once (ids
		// dedupe only redeliveries, so a client retry counts them again).
		s.log.Error("ingest navigation events", "events", len(events), "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": len(events)})
}

func (s *Service) handleProducts(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Products())
}

func (s *Service) handleProduct(w http.ResponseWriter, r *http.Request) {
	p, ok := s.Product(r.PathValue("id"))
	if !ok {
		http.Error(w, "unknown product", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Service) handlePutProduct(w http.ResponseWriter, r *http.Request) {
	body, ok := httpbody.Read(w, r, 64<<10)
	if !ok {
		return
	}
	var p Product
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "product must be a JSON object with id, title, category and price", http.StatusBadRequest)
		return
	}
	id := r.PathValue("id")
	if p.ID == "" {
		p.ID = id
	}
	if p.ID != id {
		http.Error(w, "id in the body differs from the path", http.StatusBadRequest)
		return
	}
	if err := s.PutProduct(r.Context(), p); err != nil {
		if errors.Is(err, ErrBadProduct) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.log.Error("put product", "product", id, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleStats(w http.ResponseWriter, r *http.Request) {
	st, ok := s.Stats(r.PathValue("id"))
	if !ok {
		http.Error(w, "unknown product", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Service) handleTop(w http.ResponseWriter, r *http.Request) {
	top, _ := s.Top()
	writeJSON(w, http.StatusOK, top)
}
