package sshdesk

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// MaxKeysFile bounds the size of the authorized_keys file read, so a file
// replaced by something huge cannot exhaust the node's memory.
const MaxKeysFile = 1 << 20

// Key is one line of the keys file: a public key that signs in as Agent.
type Key struct {
	Agent       string // the comment's first word; also the SSH user name
	Capacity    int    // capacity=N after the name; 0 = the node's default
	Fingerprint string // SHA256 fingerprint, as ssh-keygen -l prints it
	Line        int    // line number in the file, for messages
	key         gossh.PublicKey
}

// Keys is a parsed keys file: fingerprint → key. A Keys value is never
// changed after ParseKeys returns it, so it is safe for concurrent use.
type Keys struct {
	byFP map[string]Key
}

// Len is the number of keys.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.byFP)
}

// Lookup returns the key listed with the same public key as pk.
func (k *Keys) Lookup(pk gossh.PublicKey) (Key, bool) {
	if k == nil || pk == nil {
		return Key{}, false
	}
	e, ok := k.byFP[gossh.FingerprintSHA256(pk)]
	if !ok || !bytes.Equal(e.key.Marshal(), pk.Marshal()) {
		return Key{}, false
	}
	return e, true
}

// signsInAs reports whether k still lets fingerprint fp sign in as agent.
func (k *Keys) signsInAs(fp, agent string) bool {
	if k == nil {
		return false
	}
	e, ok := k.byFP[fp]
	return ok && e.Agent == agent
}

// ParseKeys parses an OpenSSH authorized_keys file whose comment names the
// agent: "[options] ssh-ed25519 AAAA… alice [capacity=N]". Blank lines and
// lines starting with '#' are skipped. Options before the key type
// (from="…", no-pty, …) are refused rather than silently ignored: the node
// does not enforce them. Any bad line is an error that names it; nothing
// is returned then, so a half-valid file never replaces a valid one.
func ParseKeys(data []byte) (*Keys, error) {
	if len(data) > MaxKeysFile {
		return nil, fmt.Errorf("keys file is %d bytes, above the %d limit", len(data), MaxKeysFile)
	}
	keys := &Keys{byFP: map[string]Key{}}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxKeysFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, err := parseLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		k.Line = n
		if prev, dup := keys.byFP[k.Fingerprint]; dup {
			errs = append(errs, fmt.Errorf("line %d: the same key as line %d (%s); a key signs in as one agent", n, prev.Line, prev.Agent))
			continue
		}
		keys.byFP[k.Fingerprint] = k
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return keys, nil
}

func parseLine(line string) (Key, error) {
	pk, comment, options, rest, err := gossh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return Key{}, fmt.Errorf("not a public key line: %w", err)
	}
	if len(options) > 0 {
		return Key{}, fmt.Errorf("options %q are not supported (put the node behind a firewall instead)", strings.Join(options, ","))
	}
	if len(rest) > 0 {
		return Key{}, errors.New("one key per line")
	}
	if _, isCert := pk.(*gossh.Certificate); isCert {
		return Key{}, errors.New("certificates are not supported; list the agent's public key")
	}
	fields := strings.Fields(comment)
	if len(fields) == 0 {
		return Key{}, errors.New("no agent name after the key (the comment field names the agent)")
	}
	k := Key{Agent: fields[0], Fingerprint: gossh.FingerprintSHA256(pk), key: pk}
	if err := protocol.ValidAgentName(k.Agent); err != nil {
		return Key{}, err
	}
	for _, f := range fields[1:] {
		v, ok := strings.CutPrefix(f, "capacity=")
		if !ok {
			return Key{}, fmt.Errorf("unexpected %q after the agent name (only capacity=N)", f)
		}
		c, err := strconv.Atoi(v)
		if err != nil || c < 1 || c > protocol.MaxCapacity {
			return Key{}, fmt.Errorf("capacity=%s: want a number from 1 to %d", v, protocol.MaxCapacity)
		}
		k.Capacity = c
	}
	return k, nil
}
