package amqpbus

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"
)

// Options configure Dial. Every zero value means the documented default.
type Options struct {
	// URL of the broker, amqp:// or amqps:// (TLS with the URL's host as
	// server name). Required. See URLFromEnv for CLOUDAMQP_URL (Heroku).
	URL string
	// Exchange is the durable topic exchange. "" = "switchboard". The dead
	// letter exchange is Exchange+".dlx" and its queue Exchange+".dead".
	Exchange string
	// QueuePrefix is prepended to every queue name this bus declares.
	// "" = "switchboard.".
	QueuePrefix string
	// Heartbeat is the AMQP heartbeat interval. 0 = 10s.
	Heartbeat time.Duration
	// ConfirmWindow bounds published-but-unconfirmed messages. 0 = 1024.
	ConfirmWindow int
	// Linger is how long a publish may wait to be written together with
	// the publishes that follow it: while earlier publishes await their
	// confirms, the publisher writes at most once per Linger, so that under
	// load the broker gets messages in runs (a stream then stores a run as
	// one chunk and reads it once per consumer, which costs the broker a
	// fraction of one chunk per message). A publish is written at once when
	// nothing awaits a confirm or Linger has passed since the last write.
	// 0 = 4ms; negative = write every publish at once.
	Linger time.Duration
	// ReconnectMin and ReconnectMax bound the capped exponential backoff
	// (with jitter) between reconnection attempts, which never stop.
	// 0 = 100ms and 5s.
	ReconnectMin, ReconnectMax time.Duration
	// DialTimeout bounds the TCP connect and AMQP handshake. 0 = 10s.
	DialTimeout time.Duration
	// RetryDelay is the default delay before a failed message is
	// redelivered (SubscribeOptions.RetryDelay overrides it). 0 = 1s.
	RetryDelay time.Duration
	// ConnectionName is shown by the broker (rabbitmqctl list_connections
	// client_properties, management UI). "" = "switchboard".
	ConnectionName string
	// ContentType of published messages. "" = "application/json".
	ContentType string
	// Logger receives connection events and dead letters. nil = slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.URL == "" {
		return errors.New("amqpbus: Options.URL (-amqp, SWITCHBOARD_AMQP_URL or CLOUDAMQP_URL) is required")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return errors.New("amqpbus: Options.URL is not a valid URL")
	}
	if u.Scheme != "amqp" && u.Scheme != "amqps" {
		return fmt.Errorf("amqpbus: Options.URL %s: scheme must be amqp or amqps", u.Redacted())
	}
	def := func(d *time.Duration, v time.Duration, name string) error {
		if *d < 0 {
			return fmt.Errorf("amqpbus: Options.%s must not be negative", name)
		}
		if *d == 0 {
			*d = v
		}
		return nil
	}
	switch {
	case o.Linger == 0:
		o.Linger = 4 * time.Millisecond
	case o.Linger < 0:
		o.Linger = 0
	}
	for _, e := range []error{
		def(&o.Heartbeat, 10*time.Second, "Heartbeat"),
		def(&o.ReconnectMin, 100*time.Millisecond, "ReconnectMin"),
		def(&o.ReconnectMax, 5*time.Second, "ReconnectMax"),
		def(&o.DialTimeout, 10*time.Second, "DialTimeout"),
		def(&o.RetryDelay, time.Second, "RetryDelay"),
	} {
		if e != nil {
			return e
		}
	}
	if o.ReconnectMax < o.ReconnectMin {
		return errors.New("amqpbus: Options.ReconnectMax must be at least ReconnectMin")
	}
	if o.Exchange == "" {
		o.Exchange = "switchboard"
	}
	if o.QueuePrefix == "" {
		o.QueuePrefix = "switchboard."
	}
	switch {
	case o.ConfirmWindow == 0:
		o.ConfirmWindow = 1024
	case o.ConfirmWindow < 0 || o.ConfirmWindow > 1<<16:
		return errors.New("amqpbus: Options.ConfirmWindow must be between 1 and 65536")
	}
	if o.ConnectionName == "" {
		o.ConnectionName = "switchboard"
	}
	if o.ContentType == "" {
		o.ContentType = "application/json"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// URLFromEnv returns the broker URL from the environment the way the node
// documents it: SWITCHBOARD_AMQP_URL, else CLOUDAMQP_URL (set by the Heroku
// CloudAMQP add-on), else "" (embedded in-process bus). getenv is usually
// os.Getenv.
func URLFromEnv(getenv func(string) string) string {
	if u := getenv("SWITCHBOARD_AMQP_URL"); u != "" {
		return u
	}
	return getenv("CLOUDAMQP_URL")
}
