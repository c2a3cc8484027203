// Package token issues and verifies the bearer tokens agents present when
// they connect. A token is self-contained and signed with the team's shared
// secret (HMAC-SHA256), so any node can verify a token issued anywhere
// without a shared database, and `switchboard token` works while nodes run.
//
// Format: "v1." + base64url(JSON claims) + "." + base64url(HMAC-SHA256 of the
// first two parts). Claims: agent name, capacity (0 = the node's default),
// issued-at and expiry in Unix seconds.
//
// All functions are safe for concurrent use.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Errors returned by Verify. What the client sees (401) is chosen at the edge.
var (
	ErrMalformed = errors.New("token: malformed")
	ErrSignature = errors.New("token: bad signature")
	ErrExpired   = errors.New("token: expired")
	ErrNoSecret  = errors.New("token: no secret configured")
)

// MaxLen bounds the token length accepted, so a hostile header cannot make
// verification expensive.
const MaxLen = 1024

// Claims are what a token says about its agent.
type Claims struct {
	Agent    string `json:"sub"`
	Capacity int    `json:"cap,omitempty"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
}

const prefix = "v1."

var enc = base64.RawURLEncoding

// Issue signs claims for agent with secret. A ttl of zero or less is refused:
// every token expires.
func Issue(secret []byte, agent string, capacity int, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", ErrNoSecret
	}
	if err := protocol.ValidAgentName(agent); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	if capacity < 0 || capacity > protocol.MaxCapacity {
		return "", fmt.Errorf("token: capacity must be between 0 and %d", protocol.MaxCapacity)
	}
	if ttl <= 0 {
		return "", errors.New("token: ttl must be positive")
	}
	c := Claims{Agent: agent, Capacity: capacity, IssuedAt: now.Unix(), Expires: now.Add(ttl).Unix()}
	body, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	unsigned := prefix + enc.EncodeToString(body)
	return unsigned + "." + enc.EncodeToString(sign(secret, unsigned)), nil
}

// Verify checks tok's signature with secret and its expiry against now.
func Verify(secret []byte, tok string, now time.Time) (Claims, error) {
	var c Claims
	if len(secret) == 0 {
		return c, ErrNoSecret
	}
	if len(tok) > MaxLen || !strings.HasPrefix(tok, prefix) {
		return c, ErrMalformed
	}
	dot := strings.LastIndexByte(tok, '.')
	if dot <= len(prefix) {
		return c, ErrMalformed
	}
	unsigned, sigPart := tok[:dot], tok[dot+1:]
	sig, err := enc.DecodeString(sigPart)
	if err != nil {
		return c, ErrMalformed
	}
	if !hmac.Equal(sig, sign(secret, unsigned)) {
		return c, ErrSignature
	}
	body, err := enc.DecodeString(unsigned[len(prefix):])
	if err != nil {
		return c, ErrMalformed
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return Claims{}, ErrMalformed
	}
	if protocol.ValidAgentName(c.Agent) != nil || c.Capacity < 0 || c.Capacity > protocol.MaxCapacity {
		return Claims{}, ErrMalformed
	}
	if now.Unix() >= c.Expires {
		return Claims{}, ErrExpired
	}
	return c, nil
}

func sign(secret []byte, s string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return m.Sum(nil)
}
