package bustest

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultAMQPURL is the broker tests use when SWITCHBOARD_TEST_AMQP_URL is unset.
const DefaultAMQPURL = "amqp://guest:guest@127.0.0.1:5672/"

// AMQPURL returns the test broker URL (SWITCHBOARD_TEST_AMQP_URL, default
// DefaultAMQPURL) after checking that a broker answers there with a short
// timeout. When none does, the test is skipped — or fails when
// SWITCHBOARD_REQUIRE_AMQP=1, as in CI.
func AMQPURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SWITCHBOARD_TEST_AMQP_URL")
	if u == "" {
		u = DefaultAMQPURL
	}
	conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err == nil {
		_ = conn.Close()
		return u
	}
	msg := "no RabbitMQ at " + Redact(u) + ": " + err.Error() + " (set SWITCHBOARD_TEST_AMQP_URL; CI sets SWITCHBOARD_REQUIRE_AMQP=1)"
	if os.Getenv("SWITCHBOARD_REQUIRE_AMQP") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Redact returns the URL with its password replaced, for logs and errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// UniqueName returns prefix, a sanitized form of the test name and random
// hex, usable as an exchange or queue name that no other test run shares.
func UniqueName(t testing.TB, prefix string) string {
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return strings.Trim(prefix+"."+name+"."+hex.EncodeToString(b[:]), ".")
}

// DeleteOnCleanup registers a t.Cleanup that connects to the broker at url
// and deletes the exchanges and queues that names returns (called at cleanup
// time, so it can report what a Bus declared during the test). Missing ones
// are ignored; nothing else is touched.
func DeleteOnCleanup(t testing.TB, url string, names func() (exchanges, queues []string)) {
	t.Helper()
	t.Cleanup(func() {
		exchanges, queues := names()
		if len(exchanges) == 0 && len(queues) == 0 {
			return
		}
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
		if err != nil {
			t.Errorf("cleanup: dial %s: %v", Redact(url), err)
			return
		}
		defer conn.Close()
		// A failed delete closes the channel, so use a fresh one each time.
		del := func(what, name string, f func(ch *amqp.Channel) error) {
			ch, err := conn.Channel()
			if err != nil {
				t.Errorf("cleanup: channel: %v", err)
				return
			}
			defer ch.Close()
			if err := f(ch); err != nil {
				t.Logf("cleanup: delete %s %s: %v", what, name, err)
			}
		}
		for _, q := range queues {
			del("queue", q, func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
		}
		for _, e := range exchanges {
			del("exchange", e, func(ch *amqp.Channel) error { return ch.ExchangeDelete(e, false, false) })
		}
	})
}

// channel opens a channel on its own connection to the broker at url,
// closed when the test ends.
func channel(t testing.TB, url string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		t.Fatalf("dial %s: %v", Redact(url), err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// DeleteQueue deletes queue name on the broker at url now, as an operator
// (or a broker that lost its data) would.
func DeleteQueue(t testing.TB, url, name string) {
	t.Helper()
	ch := channel(t, url)
	if _, err := ch.QueueDelete(name, false, false, false); err != nil {
		t.Fatalf("delete queue %s: %v", name, err)
	}
}

// DeclareStream declares stream name on the broker at url, bound to
// exchange with bindings, as a broker that lost its data would have it
// again once a node declared it: empty, starting at offset 0.
func DeclareStream(t testing.TB, url, exchange, name string, bindings ...string) {
	t.Helper()
	ch := channel(t, url)
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "stream"}); err != nil {
		t.Fatalf("declare stream %s: %v", name, err)
	}
	for _, b := range bindings {
		if err := ch.QueueBind(name, b, exchange, false, nil); err != nil {
			t.Fatalf("bind %s to %s: %v", name, b, err)
		}
	}
}
