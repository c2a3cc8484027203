package switchboard

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// MinSecretLen is the shortest -secret (and -admin-token) a node accepts
// on an address other than loopback.
const MinSecretLen = 16

// placeholders are parts of the example values the project's own docs and
// deploy files use (or used). A secret containing one was copied, not
// chosen; on a reachable address anyone who read the docs could forge
// agent tokens with it.
var placeholders = []string{"change-me", "changeme", "change_me", "replace-me", "dev-secret", "dev-admin", "example", "placeholder", "password"}

// Loopback reports whether addr (host:port) listens on the loopback
// interface only. An empty host, 0.0.0.0 and :: listen everywhere; a host
// name other than localhost might resolve to anything, so it counts as
// reachable.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// weakSecret says why s cannot guard a reachable node, or "" when it can.
// An empty value is not weak: it turns the feature off (no agent, no admin
// is accepted).
func weakSecret(s string) string {
	if s == "" {
		return ""
	}
	lower := strings.ToLower(s)
	for _, p := range placeholders {
		if strings.Contains(lower, p) {
			return fmt.Sprintf("it contains the placeholder %q", p)
		}
	}
	if len(s) < MinSecretLen {
		return fmt.Sprintf("it has %d characters, fewer than %d", len(s), MinSecretLen)
	}
	return ""
}

// checkExposure refuses a weak -secret or -admin-token when the node
// listens on an address other than loopback (issue 20: safe defaults).
// On loopback, where only this machine can connect, the quick start's
// dev-secret stays fine.
func (o *Options) checkExposure() error {
	if o.Addr == "" || Loopback(o.Addr) {
		return nil
	}
	var errs []error
	for _, s := range []struct{ flag, env, value string }{
		{"-secret", "SWITCHBOARD_SECRET", o.Secret},
		{"-admin-token", "SWITCHBOARD_ADMIN_TOKEN", o.AdminToken},
	} {
		if why := weakSecret(s.value); why != "" {
			errs = append(errs, fmt.Errorf("%s: too weak to listen on %s, which is not loopback (%s): set %s to at least %d random characters, e.g. $(openssl rand -hex 32), or listen on 127.0.0.1",
				s.flag, o.Addr, why, s.env, MinSecretLen))
		}
	}
	return errors.Join(errs...)
}

// MsgNoPublicURL is the warning a node logs at start when Twilio is
// configured but -public-url is not: it cannot ask Twilio for status
// callbacks without knowing its own public address.
const MsgNoPublicURL = "Twilio is configured without a public URL: replies are sent, but their delivery status stays \"queued\" because Twilio is not asked for status callbacks (and webhook signatures are checked against the URL rebuilt from Host and X-Forwarded-Proto); set -public-url (SWITCHBOARD_PUBLIC_URL) to the URL Twilio calls, e.g. https://sms.example.com"
