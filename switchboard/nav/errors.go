package nav

import "errors"

// Sentinel errors (besides ErrBadEvent and ErrTooMany in event.go). What an
// HTTP client sees is chosen in http.go.
var (
	// ErrBadProduct: a catalog entry is malformed. Nothing was stored.
	ErrBadProduct = errors.New("nav: bad product")
	// ErrUnknownProduct: the product is not in the catalog.
	ErrUnknownProduct = errors.New("nav: unknown product")
)
