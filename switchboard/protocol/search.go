package protocol

// Search limits (the search frame and GET /search). What a query's words
// are is decided by the store's index (store.Words, store.ParseQuery).
const (
	// MaxQuery is the longest search query accepted, in bytes.
	MaxQuery = 256
	// MaxQueryWords is the most distinct words a query may hold.
	MaxQueryWords = 8
	// DefaultSearchPage is the page size when a search names none.
	DefaultSearchPage = 50
	// MaxSearchPage is the largest page of search results served.
	MaxSearchPage = 200
)

// validateSearch checks a search request's fields; the words of the query
// are checked by the node (store.ParseQuery).
func validateSearch(f *Frame) error {
	switch {
	case len(f.Ref) > MaxRef:
		return invalid(truncate(f.Ref, MaxRef), "ref is at most %d bytes", MaxRef)
	case len(f.Query) > MaxQuery:
		return invalid(f.Ref, "q is longer than %d bytes", MaxQuery)
	case f.Limit < 0 || f.Limit > MaxSearchPage:
		return invalid(f.Ref, "limit must be between 1 and %d", MaxSearchPage)
	case len(f.Before) > 64:
		return invalid(f.Ref, "before is not a message id")
	}
	if f.Phone != "" {
		if _, err := NormalizeAddress(f.Phone); err != nil {
			return invalid(f.Ref, "phone: %v", err)
		}
	}
	return nil
}
