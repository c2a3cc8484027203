package token

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestIssueVerify(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_700_000_000, 0)
	tok, err := Issue(secret, "alice", 4, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(secret, tok, now.Add(59*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Agent != "alice" || c.Capacity != 4 || c.Expires != now.Add(time.Hour).Unix() {
		t.Fatalf("claims = %+v", c)
	}

	other, _ := Issue([]byte("other"), "mallory", 40, time.Hour, now)
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + strings.Split(other, ".")[1] + "." + parts[2]
	tests := []struct {
		name   string
		secret []byte
		tok    string
		at     time.Time
		want   error
	}{
		{"expired", secret, tok, now.Add(time.Hour), ErrExpired},
		{"wrong secret", []byte("nope"), tok, now, ErrSignature},
		{"signed by another secret", secret, other, now, ErrSignature},
		{"claims swapped", secret, forged, now, ErrSignature},
		{"empty", secret, "", now, ErrMalformed},
		{"no prefix", secret, strings.TrimPrefix(tok, "v1."), now, ErrMalformed},
		{"no signature", secret, parts[0] + "." + parts[1], now, ErrMalformed},
		{"bad base64 signature", secret, parts[0] + "." + parts[1] + ".!!", now, ErrMalformed},
		{"too long", secret, "v1." + strings.Repeat("a", MaxLen), now, ErrMalformed},
		{"no secret", nil, tok, now, ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Verify(tt.secret, tt.tok, tt.at); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestIssueRefuses(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name, agent string
		secret      []byte
		capacity    int
		ttl         time.Duration
	}{
		{"no secret", "bob", nil, 1, time.Hour},
		{"bad name", "bob smith", []byte("k"), 1, time.Hour},
		{"empty name", "", []byte("k"), 1, time.Hour},
		{"negative capacity", "bob", []byte("k"), -1, time.Hour},
		{"zero ttl", "bob", []byte("k"), 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Issue(tc.secret, tc.agent, tc.capacity, tc.ttl, now); err == nil {
				t.Fatal("Issue succeeded")
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	secret := []byte("k")
	tok, _ := Issue(secret, "alice", 2, time.Hour, time.Unix(0, 0))
	f.Add(tok)
	f.Add("v1..")
	f.Add("v1.e30.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Verify(secret, s, time.Unix(10, 0))
		if err == nil && (c.Agent == "" || c.Expires <= 10) {
			t.Fatalf("accepted invalid claims %+v", c)
		}
	})
}
