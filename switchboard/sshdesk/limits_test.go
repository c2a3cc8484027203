package sshdesk

import (
	"fmt"
	"net"
	"testing"
	"time"
)

func TestPerSource(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	p := newPerSource(time.Second, 3, 2, clock)
	for i := range 3 {
		if !p.take("10.0.0.1") {
			t.Fatalf("take %d refused within the burst", i)
		}
	}
	if !p.empty("10.0.0.1") || p.take("10.0.0.1") {
		t.Fatal("a fourth take in the same instant was allowed")
	}
	if p.empty("10.0.0.2") || !p.take("10.0.0.2") {
		t.Fatal("another source is limited by the first")
	}
	now = now.Add(time.Second)
	if !p.take("10.0.0.1") {
		t.Fatal("no token after a second")
	}
	// Only max sources are remembered.
	for i := range 10 {
		p.take(fmt.Sprintf("10.0.1.%d", i))
	}
	if p.cache.Len() != 2 {
		t.Fatalf("remembers %d sources, want 2", p.cache.Len())
	}
}

func TestSourceIP(t *testing.T) {
	for _, tc := range []struct {
		a    net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 5555}, "192.0.2.1"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 22}, "2001:db8::1"},
		{&net.UnixAddr{Name: "/x", Net: "unix"}, "/x"},
		{nil, ""},
	} {
		if got := sourceIP(tc.a); got != tc.want {
			t.Errorf("sourceIP(%v) = %q, want %q", tc.a, got, tc.want)
		}
	}
}
