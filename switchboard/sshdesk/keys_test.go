package sshdesk

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// newKey returns a fresh ed25519 signer and its authorized_keys form
// without a comment ("ssh-ed25519 AAAA…").
func newKey(t testing.TB) (gossh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey())))
}

func TestParseKeys(t *testing.T) {
	alice, a := newKey(t)
	bob, b := newKey(t)
	_, c := newKey(t)
	keys, err := ParseKeys([]byte("# agents\n\n" + a + " alice\n" + b + " bob capacity=4\r\n  " + c + " alice   \n"))
	if err != nil {
		t.Fatal(err)
	}
	if keys.Len() != 3 {
		t.Fatalf("Len = %d, want 3", keys.Len())
	}
	for _, tc := range []struct {
		signer   gossh.Signer
		agent    string
		capacity int
		line     int
	}{{alice, "alice", 0, 3}, {bob, "bob", 4, 4}} {
		k, ok := keys.Lookup(tc.signer.PublicKey())
		if !ok || k.Agent != tc.agent || k.Capacity != tc.capacity || k.Line != tc.line || k.Fingerprint != gossh.FingerprintSHA256(tc.signer.PublicKey()) {
			t.Errorf("Lookup(%s) = %+v, %v; want agent %s capacity %d line %d", tc.agent, k, ok, tc.agent, tc.capacity, tc.line)
		}
	}
	stranger, _ := newKey(t)
	if k, ok := keys.Lookup(stranger.PublicKey()); ok {
		t.Errorf("an unlisted key is found: %+v", k)
	}
}

func TestParseKeysRefuses(t *testing.T) {
	_, a := newKey(t)
	for _, tc := range []struct{ name, file, want string }{
		{"no name", a + "\n", "line 1: no agent name"},
		{"bad name", a + " al.ice\n", "line 1: agent name \"al.ice\""},
		{"capacity zero", a + " alice capacity=0\n", "capacity=0"},
		{"capacity word", a + " alice capacity=lots\n", "capacity=lots"},
		{"capacity huge", a + " alice capacity=99999\n", "capacity=99999"},
		{"extra word", a + " alice admin\n", "unexpected \"admin\""},
		{"options", `from="10.0.0.0/8" ` + a + " alice\n", "options"},
		{"garbage", "# ok\nssh-ed25519 notbase64 alice\n", "line 2: not a public key"},
		{"duplicate", a + " alice\n" + a + " bob\n", "line 2: the same key as line 1 (alice)"},
		{"too big", strings.Repeat("#", MaxKeysFile+1), "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseKeys([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if keys != nil {
				t.Errorf("a file with a bad line returned keys: %v", keys)
			}
		})
	}
}

// FuzzParseKeys: any input parses or fails with an error; what parses
// holds only valid agent names and capacities, and every key is found by
// its own public key.
func FuzzParseKeys(f *testing.F) {
	_, a := newKey(f)
	f.Add([]byte(a + " alice capacity=3\n"))
	f.Add([]byte("# c\n\n" + a + " bob\n"))
	f.Add([]byte(`no-pty ` + a + " x\n"))
	f.Add([]byte("ssh-rsa AAAA\x00 \xff\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseKeys(data)
		if err != nil {
			if keys != nil {
				t.Fatal("keys returned with an error")
			}
			return
		}
		for fp, k := range keys.byFP {
			if k.Agent == "" || k.Capacity < 0 || fp != k.Fingerprint {
				t.Fatalf("bad key %+v", k)
			}
			if got, ok := keys.Lookup(k.key); !ok || got.Agent != k.Agent {
				t.Fatalf("Lookup of its own key = %+v, %v", got, ok)
			}
		}
	})
}
