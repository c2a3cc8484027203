// Package httpbody reads a request body with a size limit: the one bounded
// body reader of the node's HTTP handlers (webhooks, the admin API,
// navigation events), so that every one answers an oversized or broken
// body the same way.
package httpbody

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Read reads r's body, at most limit bytes. When it cannot, it answers the
// request itself — 413 naming the limit, or 400 when the body could not be
// read — and returns false.
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		http.Error(w, fmt.Sprintf("body larger than %d bytes", limit), http.StatusRequestEntityTooLarge)
		return nil, false
	case err != nil:
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return nil, false
	}
	return body, true
}
