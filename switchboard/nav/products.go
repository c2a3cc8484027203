package nav

// This file holds the Service's catalog: reading it and changing it
// through the nav stream.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/switchboard/switchboard/switchboard/bus"
)

// Products returns the catalog in id order (numeric ids numerically).
func (s *Service) Products() []Product {
	s.mu.Lock()
	ps := slices.Collect(maps.Values(s.catalog))
	s.mu.Unlock()
	sortProducts(ps)
	return ps
}

// Product returns one catalog entry.
func (s *Service) Product(id string) (Product, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.catalog[id]
	return p, ok
}

// PutProduct validates and stores a catalog entry (synced), then tells the
// other nodes on nav.catalog.<id>. Views already counted keep the category
// they were counted with.
func (s *Service) PutProduct(ctx context.Context, p Product) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if err := s.putProduct(p); err != nil {
		return err
	}
	body, _ := json.Marshal(p)
	if err := s.pub.Publish(ctx, keyCatalogPrefix+p.ID, body); err != nil && !errors.Is(err, bus.ErrUnroutable) {
		s.log.Warn("publish catalog change", "product", p.ID, "err", err)
	}
	return nil
}

func (s *Service) putProduct(p Product) error {
	s.mu.Lock()
	old, ok := s.catalog[p.ID]
	s.mu.Unlock()
	if ok && old == p {
		return nil
	}
	b, _ := json.Marshal(p)
	if err := s.st.PutProduct(p.ID, b); err != nil {
		return err
	}
	s.mu.Lock()
	s.catalog[p.ID] = p
	s.mu.Unlock()
	return nil
}

// HandleCatalog is the bus handler for nav.catalog.*: another node's
// catalog change.
func (s *Service) HandleCatalog(_ context.Context, d bus.Delivery) error {
	var p Product
	if err := json.Unmarshal(d.Body, &p); err != nil {
		return bus.Permanent(fmt.Errorf("nav: decode %s: %w", d.Key, err))
	}
	if err := p.Validate(); err != nil {
		return bus.Permanent(fmt.Errorf("nav: decode %s: %w", d.Key, err))
	}
	if err := s.putProduct(p); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.Offset > s.offset { // read from the nav stream (cluster mode)
		s.offset, s.offDirty = d.Offset, true
	}
	return nil
}

// ---- dedupe ----
