package nav

import (
	"encoding/json"
	"fmt"
	"slices"
)

// coview holds the co-view counters and the per-user histories. It is plain
// data with no locking: Service guards it with its mutex.
//
// Semantics (issue 6): each user has the set of distinct products they
// viewed, each with its category. When user U views product P1 (category C1)
// for the first time, then for every product P2 (category C2) already in U's
// set, count[P1][C2]++ and count[P2][C1]++; then P1 joins the set. Viewing
// a product again changes no counter. Because each pair is counted once in
// both directions, the counters do not depend on the order of the views
// (as long as no history hits its bound).
type coview struct {
	maxProducts int
	counts      map[string]map[string]int64 // product → category → n
	users       map[string]*userHist
	phones      map[string]string // phone → the user last linked to it

	dirtyCounts map[string]struct{} // products whose counts are not yet flushed
	dirtyUsers  map[string]struct{} // users not yet flushed (absent from users = delete)
}

// userHist is one user's distinct viewed products, in the order of their
// first view (oldest first), bounded by maxProducts.
type userHist struct {
	Products []viewedProduct `json:"p"`
	LastSeen int64           `json:"s"`            // Unix ms of the last event
	Phone    string          `json:"ph,omitempty"` // linked SMS customer
}

type viewedProduct struct {
	ID       string `json:"id"`
	Category string `json:"c"`
	Last     int64  `json:"t"` // Unix ms of the latest view (re-views move it)
}

func newCoview(maxProducts int) *coview {
	return &coview{
		maxProducts: maxProducts,
		counts:      make(map[string]map[string]int64),
		users:       make(map[string]*userHist),
		phones:      make(map[string]string),
		dirtyCounts: make(map[string]struct{}),
		dirtyUsers:  make(map[string]struct{}),
	}
}

// view applies one PRODUCT view at now (Unix ms) and, when mark is not
// nil, adds every product whose counters moved to it. It reports whether the
// view was the user's first of this product.
func (c *coview) view(user, product, category, phone string, now int64, mark map[string]struct{}) bool {
	u := c.users[user]
	if u == nil {
		u = &userHist{}
		c.users[user] = u
	}
	u.LastSeen = now
	c.dirtyUsers[user] = struct{}{}
	c.link(user, u, phone)
	for i := range u.Products {
		if u.Products[i].ID == product {
			u.Products[i].Last = now
			return false
		}
	}
	for _, p2 := range u.Products {
		c.add(product, p2.Category)
		c.add(p2.ID, category)
		if mark != nil {
			mark[p2.ID] = struct{}{}
		}
	}
	if len(u.Products) > 0 && mark != nil {
		mark[product] = struct{}{}
	}
	if len(u.Products) >= c.maxProducts {
		// Forget the oldest: a later view of it counts as a first view again.
		u.Products = slices.Delete(u.Products, 0, len(u.Products)-c.maxProducts+1)
	}
	u.Products = append(u.Products, viewedProduct{ID: product, Category: category, Last: now})
	return true
}

// touch records a non-counted event of user (other types, unknown
// products): it keeps the user alive and links the phone.
func (c *coview) touch(user, phone string, now int64) {
	u := c.users[user]
	if u == nil {
		if phone == "" {
			return // nothing worth remembering about a stranger
		}
		u = &userHist{}
		c.users[user] = u
	}
	u.LastSeen = now
	c.link(user, u, phone)
	c.dirtyUsers[user] = struct{}{}
}

// link points phone at user (the latest user to carry a phone wins).
func (c *coview) link(user string, u *userHist, phone string) {
	if phone == "" {
		return
	}
	if u.Phone != phone && u.Phone != "" && c.phones[u.Phone] == user {
		delete(c.phones, u.Phone)
	}
	u.Phone = phone
	c.phones[phone] = user
}

func (c *coview) add(product, category string) {
	m := c.counts[product]
	if m == nil {
		m = make(map[string]int64)
		c.counts[product] = m
	}
	m[category]++
	c.dirtyCounts[product] = struct{}{}
}

// categories returns a copy of a product's counters (never nil).
func (c *coview) categories(product string) map[string]int64 {
	m := c.counts[product]
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// expire forgets users idle since before cutoff (Unix ms).
func (c *coview) expire(cutoff int64) int {
	n := 0
	for id, u := range c.users {
		if u.LastSeen < cutoff {
			delete(c.users, id)
			if u.Phone != "" && c.phones[u.Phone] == id {
				delete(c.phones, u.Phone)
			}
			c.dirtyUsers[id] = struct{}{}
			n++
		}
	}
	return n
}

// recent returns the user's products, most recently viewed first, at most n.
func (u *userHist) recent(n int) []viewedProduct {
	ps := slices.Clone(u.Products)
	slices.Reverse(ps) // among equal times the later first view comes first
	slices.SortStableFunc(ps, func(a, b viewedProduct) int {
		switch {
		case a.Last > b.Last:
			return -1
		case a.Last < b.Last:
			return 1
		}
		return 0
	})
	if len(ps) > n {
		ps = ps[:n]
	}
	return ps
}

// loadCounts and loadUser restore the state from the store's scans.
func (c *coview) loadCounts(product string, v []byte) error {
	var m map[string]int64
	if err := json.Unmarshal(v, &m); err != nil {
		return fmt.Errorf("nav: counts of %s: %w", product, err)
	}
	c.counts[product] = m
	return nil
}

func (c *coview) loadUser(user string, v []byte) error {
	var u *userHist
	var err error
	if len(v) > 0 && v[0] == '{' {
		u = &userHist{}
		err = json.Unmarshal(v, u)
	} else {
		u, err = decodeUser(v)
	}
	if err != nil {
		return fmt.Errorf("nav: history of %s: %w", user, err)
	}
	c.users[user] = u
	if u.Phone != "" {
		if prev, ok := c.phones[u.Phone]; !ok || c.users[prev].LastSeen < u.LastSeen {
			c.phones[u.Phone] = user
		}
	}
	return nil
}
