package nav

// This file holds what the Service answers: the top list, product stats,
// a customer's stats, the counters, and their persistence.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus"
	"github.com/switchboard/switchboard/switchboard/protocol"
)

// HandleTop is the bus handler for stats.top: it records another node's
// partial ranking (merged at the next tick).
func (s *Service) HandleTop(_ context.Context, d bus.Delivery) error {
	var p Partial
	if err := json.Unmarshal(d.Body, &p); err != nil || p.Node == "" {
		return bus.Permanent(fmt.Errorf("nav: decode %s: bad partial ranking", d.Key))
	}
	if p.Node == s.opts.Node {
		return nil // our own, already known
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Leaving {
		delete(s.peers, p.Node)
		return nil
	}
	s.peers[p.Node] = peer{p: p, heard: s.ticks}
	return nil
}

// TopList is the answer of GET /stats/top.
type TopList struct {
	Window string              `json:"window"`
	Top    []protocol.TopEntry `json:"top"`
}

// Top returns the merged top-N as of the last tick and its version, which
// changes exactly when the ranking does.
func (s *Service) Top() (TopList, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	top := slices.Clone(s.top)
	if top == nil {
		top = []protocol.TopEntry{}
	}
	return TopList{Window: s.opts.Window.String(), Top: top}, s.topVer
}

// ---- counters and customers ----

// ProductStats is the answer of GET /products/{id}/stats and the body of
// stats.product.<id>.
type ProductStats struct {
	Product    string           `json:"product"`
	Categories map[string]int64 `json:"categories"`
}

// Stats returns a product's co-view counters; ok is false for a product
// that is neither in the catalog nor counted.
func (s *Service) Stats(product string) (ProductStats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, inCatalog := s.catalog[product]
	_, counted := s.cv.counts[product]
	if !inCatalog && !counted {
		return ProductStats{}, false
	}
	return ProductStats{Product: product, Categories: s.cv.categories(product)}, true
}

// CustomerFrame is the stats frame for an SMS customer linked to a shop
// user.
type CustomerFrame struct {
	Phone string
	Frame protocol.Frame
}

// Customer returns the stats frame of the customer with this phone: the
// products they viewed most recently (newest first), and the co-view
// categories of the newest one.
func (s *Service) Customer(phone string) (protocol.Frame, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.customerLocked(phone)
}

func (s *Service) customerLocked(phone string) (protocol.Frame, bool) {
	u := s.cv.users[s.cv.phones[phone]]
	if u == nil || len(u.Products) == 0 {
		return protocol.Frame{}, false
	}
	recent := u.recent(recentViewed)
	viewed := make([]string, len(recent))
	for i, p := range recent {
		viewed[i] = p.ID
	}
	return protocol.Frame{
		Type:       protocol.TypeStats,
		Phone:      phone,
		Product:    recent[0].ID,
		Categories: s.cv.categories(recent[0].ID),
		Viewed:     viewed,
	}, true
}

// ActiveCustomers returns the frames of linked customers who viewed
// something in the last hour (at most 10000), for pushing to their agents.
func (s *Service) ActiveCustomers() []CustomerFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CustomerFrame, 0, len(s.active))
	for phone := range s.active {
		if f, ok := s.customerLocked(phone); ok {
			out = append(out, CustomerFrame{Phone: phone, Frame: f})
		}
	}
	return out
}

// Counters returns the totals since New.
func (s *Service) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counters
	c.Users = len(s.cv.users)
	return c
}

// ---- persistence ----

// Flush writes the counters and histories changed since the last flush as
// one unsynced batch. On failure the changes stay marked for the next one.
func (s *Service) Flush() {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.batch.Reset()
	s.mu.Lock()
	counts := slices.Collect(maps.Keys(s.cv.dirtyCounts))
	users := slices.Collect(maps.Keys(s.cv.dirtyUsers))
	for _, p := range counts {
		b, _ := json.Marshal(s.cv.counts[p])
		s.batch.PutCounts(p, b)
	}
	for _, id := range users {
		if u := s.cv.users[id]; u != nil {
			s.buf = encodeUser(s.buf[:0], u)
			s.batch.PutUser(id, s.buf) // the batch copies it
		} else {
			s.batch.DeleteUser(id)
		}
	}
	offDirty := s.offDirty
	if offDirty {
		s.batch.PutStreamOffset(s.offset)
		if s.head != nil {
			s.batch.PutStreamHead(s.head)
		}
		s.offDirty = false
	}
	clear(s.cv.dirtyCounts)
	clear(s.cv.dirtyUsers)
	s.mu.Unlock()
	if err := s.st.WriteNav(&s.batch); err != nil {
		s.log.Error("flush navigation counters", "err", err, "products", len(counts), "users", len(users))
		s.mu.Lock()
		for _, p := range counts {
			s.cv.dirtyCounts[p] = struct{}{}
		}
		for _, id := range users {
			s.cv.dirtyUsers[id] = struct{}{}
		}
		s.offDirty = s.offDirty || offDirty
		s.mu.Unlock()
	}
}

// Sweep forgets users idle for longer than UserTTL and customers idle for
// an hour. Run calls it every minute.
func (s *Service) Sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.cv.expire(now.Add(-s.opts.UserTTL).UnixMilli()); n > 0 {
		s.log.Info("idle users forgotten", "users", n)
	}
	cut := now.Add(-activeFor).UnixMilli()
	for phone, t := range s.active {
		if t < cut || s.cv.phones[phone] == "" {
			delete(s.active, phone)
		}
	}
}

// ---- catalog ----
