package nav

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// Product is one catalog entry (DESIGN.md).
type Product struct {
	ID       string  `json:"id"`
	Title    string  `json:"title"`
	Category string  `json:"category"`
	Price    float64 `json:"price"`
}

// Limits on product fields.
const (
	MaxTitleLen    = 256
	MaxCategoryLen = 64
)

// Validate checks a product.
func (p *Product) Validate() error {
	if !ValidID(p.ID) {
		return fmt.Errorf("%w: id must be 1 to %d letters, digits, '-' or '_'", ErrBadProduct, MaxIDLen)
	}
	if !validText(p.Title, MaxTitleLen) {
		return fmt.Errorf("%w: title is required (at most %d bytes)", ErrBadProduct, MaxTitleLen)
	}
	if !validText(p.Category, MaxCategoryLen) {
		return fmt.Errorf("%w: category is required (at most %d bytes)", ErrBadProduct, MaxCategoryLen)
	}
	if p.Price < 0 || math.IsNaN(p.Price) || math.IsInf(p.Price, 0) {
		return fmt.Errorf("%w: price must not be negative", ErrBadProduct)
	}
	return nil
}

// sampleCatalog is ../shared/catalog.sample.json, loaded into an empty
// catalog unless Options.Sample is false.
//
//go:embed catalog.sample.json
var sampleCatalog []byte

// SampleCatalog returns the embedded sample catalog.
func SampleCatalog() []Product {
	ps, err := ParseCatalog(sampleCatalog)
	if err != nil {
		panic("nav: embedded sample catalog: " + err.Error())
	}
	return ps
}

// ParseCatalog reads a JSON array of products (the format of
// catalog.sample.json and of `switchboard products import`). Every product
// is validated; duplicate ids are refused.
func ParseCatalog(data []byte) ([]Product, error) {
	var ps []Product
	if err := json.Unmarshal(data, &ps); err != nil {
		return nil, fmt.Errorf("%w: catalog must be a JSON array of products: %v", ErrBadProduct, err)
	}
	seen := make(map[string]bool, len(ps))
	for i := range ps {
		if err := ps[i].Validate(); err != nil {
			return nil, fmt.Errorf("product %d: %w", i, err)
		}
		if seen[ps[i].ID] {
			return nil, fmt.Errorf("product %d: %w: duplicate id %q", i, ErrBadProduct, ps[i].ID)
		}
		seen[ps[i].ID] = true
	}
	return ps, nil
}

// ImportCatalog parses a catalog from r and stores every product (synced).
// It is the logic of `switchboard products import FILE`; it returns how
// many products were stored.
func ImportCatalog(st ProductStore, r io.Reader) (int, error) {
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return 0, fmt.Errorf("nav: import catalog: %w", err)
	}
	ps, err := ParseCatalog(data)
	if err != nil {
		return 0, fmt.Errorf("nav: import catalog: %w", err)
	}
	for _, p := range ps {
		b, _ := json.Marshal(p)
		if err := st.PutProduct(p.ID, b); err != nil {
			return 0, fmt.Errorf("nav: import catalog: %w", err)
		}
	}
	return len(ps), nil
}

// ProductStore is the part of the store that holds the catalog.
type ProductStore interface {
	PutProduct(id string, v []byte) error
}

// lessID orders product ids numerically when both are numbers, else as
// strings, so the sample catalog lists 0, 1, 2, ... 10, not 0, 1, 10.
func lessID(a, b string) int {
	na, ea := strconv.ParseUint(a, 10, 64)
	nb, eb := strconv.ParseUint(b, 10, 64)
	switch {
	case ea == nil && eb == nil:
		if na != nb {
			if na < nb {
				return -1
			}
			return 1
		}
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

func sortProducts(ps []Product) {
	slices.SortFunc(ps, func(a, b Product) int { return lessID(a.ID, b.ID) })
}
