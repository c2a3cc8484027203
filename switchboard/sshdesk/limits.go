package sshdesk

import (
	"net"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// perSource is a token bucket per source IP address. At most max sources
// are remembered (least recently seen forgotten first), so a scan from many
// addresses costs bounded memory; a forgotten source starts with a full
// bucket again, which only makes the limit looser, never wrong.
type perSource struct {
	every time.Duration
	burst int
	now   func() time.Time

	mu    sync.Mutex // rate.Limiter is safe, but get-or-create must be atomic
	cache *lru.Cache[string, *rate.Limiter]
}

func newPerSource(every time.Duration, burst, max int, now func() time.Time) *perSource {
	c, _ := lru.New[string, *rate.Limiter](max) // max > 0: New validated it
	return &perSource{every: every, burst: burst, now: now, cache: c}
}

func (p *perSource) limiter(ip string) *rate.Limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.cache.Get(ip)
	if !ok {
		l = rate.NewLimiter(rate.Every(p.every), p.burst)
		p.cache.Add(ip, l)
	}
	return l
}

// take spends one token of ip's bucket; false means the source is over its
// limit.
func (p *perSource) take(ip string) bool { return p.limiter(ip).AllowN(p.now(), 1) }

// empty reports whether ip's bucket has no token left, without spending one.
func (p *perSource) empty(ip string) bool { return p.limiter(ip).TokensAt(p.now()) < 1 }

// sourceIP is the address part of a remote address: limits are per host,
// not per port.
func sourceIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
