package store

import (
	"crypto/rand"
	"sync"
	"time"
)

// crockford is Crockford's base32 alphabet (no I, L, O, U), as used by ULID.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idGen makes 26-character ULID-style ids: 48 bits of milliseconds since the
// epoch followed by 80 random bits, in Crockford base32. Ids sort by time; ids
// made in the same millisecond by one generator increment the random part, so
// they also sort in the order they were made.
type idGen struct {
	now func() time.Time

	mu   sync.Mutex
	ms   uint64
	rand [10]byte
}

func newIDGen(now func() time.Time) *idGen { return &idGen{now: now} }

func (g *idGen) next() string {
	ms := uint64(g.now().UnixMilli()) & (1<<48 - 1)
	g.mu.Lock()
	if ms > g.ms {
		g.ms = ms
		_, _ = rand.Read(g.rand[:]) // crypto/rand.Read never fails (Go 1.24+)
	} else {
		// Same millisecond, or the clock stepped back: keep the last time
		// and count up, so ids stay strictly increasing.
		for i := len(g.rand) - 1; i >= 0; i-- {
			g.rand[i]++
			if g.rand[i] != 0 {
				break
			}
		}
	}
	var b [16]byte
	for i := range 6 {
		b[i] = byte(g.ms >> (40 - 8*i))
	}
	copy(b[6:], g.rand[:])
	g.mu.Unlock()
	return encodeULID(b)
}

// encodeULID writes 128 bits as 26 base32 characters. The 130 bits those
// characters can hold start with two zero bits.
func encodeULID(b [16]byte) string {
	var out [26]byte
	for i := range out {
		var v byte
		for j := range 5 {
			bit := 5*i + j - 2 // bit index in b, most significant first
			v <<= 1
			if bit >= 0 && b[bit/8]&(0x80>>(bit%8)) != 0 {
				v |= 1
			}
		}
		out[i] = crockford[v]
	}
	return string(out[:])
}
