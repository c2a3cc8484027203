package switchboard

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/switchboard/nav"
	"github.com/switchboard/switchboard/udpstats"
)

// Options configure a node. NewOptions returns every default; New validates.
// The zero value of a field is documented where it means something.
type Options struct {
	Addr      string // HTTP listen address; default "127.0.0.1:8080" (this machine only); elsewhere needs a strong Secret
	DataDir   string // LevelDB directory; default "./data"
	AMQPURL   string // RabbitMQ URL: the nodes share its stream log; "" = the node alone, on its local log
	Node      string // node id in metrics and routing; default the host name
	PublicURL string // URL Twilio is configured with (scheme://host[/prefix]); "" = derived from the request and X-Forwarded-* headers
	Secret    string // signs agent tokens; "" = agents are refused (401)

	AdminToken string // bearer token for admin endpoints; "" = admin endpoints refuse everyone

	// AMQPExchange is the topic exchange nodes share; its name (plus ".")
	// also prefixes their queues. "" = "switchboard". Nodes of one cluster
	// must agree; a different name isolates a cluster (or a test run) on a
	// shared broker.
	AMQPExchange string

	// LogMaxAge and LogMaxBytes are the retention policy of the stream log
	// (RabbitMQ x-max-age, x-max-length-bytes), set only when the stream is
	// first declared: an existing stream keeps its own (a stream's
	// arguments cannot change). 0 = no limit. Default: 7 days.
	LogMaxAge   time.Duration
	LogMaxBytes int64
	// SnapshotEvery: a node publishes a snapshot of its applied state
	// every this many log entries (snapshot.go); 0 = never. Default 10000.
	SnapshotEvery int

	StatsGroup    string        // metrics multicast group; default "239.255.77.77:5554"
	StatsIface    string        // interface for multicast; default "lo"
	StatsInterval time.Duration // emit period; default 1s; 0 disables metrics

	TwilioAccountSID string // "" (with no token) = console provider
	TwilioAuthToken  string // also the webhook signature key
	TwilioFrom       string // our number, the From of replies
	TwilioAPIURL     string // "" = Twilio's API

	InsecureSkipSignature bool // accept unsigned webhooks (development only; logged at start)
	// TwilioRegister points the Twilio number's SMS webhook at
	// PublicURL+"/sms/twilio" at start (needs PublicURL and the Twilio
	// credentials). A failure is logged and the node keeps running.
	TwilioRegister bool

	Grace           time.Duration // how long a disconnected agent keeps its conversations; default 30s
	DefaultCapacity int           // capacity of an agent whose token and frame name none; default 3
	HistoryOnAssign int           // messages sent with "assigned"; default 50
	// AnswerTimeout moves a conversation whose customer's message is
	// unanswered this long to another available agent; 0 = off (flow.go).
	AnswerTimeout   time.Duration
	MaxBody         int64         // largest webhook or JSON body; default 64 KiB
	ShutdownTimeout time.Duration // drain limit on SIGTERM; default 30s
	AllowedOrigins  []string      // extra Origins allowed to open agent WebSockets (besides same host and none)
	AgentRate       int           // frames per second per agent connection; default DefaultAgentRate; 0 = unlimited
	AgentBurst      int           // frames at once above AgentRate; default DefaultAgentBurst

	// TwilioWhatsAppFrom is the WhatsApp sender of replies to WhatsApp
	// conversations ("+E164" or "whatsapp:+E164"); "" = TwilioFrom.
	TwilioWhatsAppFrom string

	// SSH agent desk (package sshdesk, wired by cmd/switchboard): agents
	// sign in with a key listed in SSHKeys. "" = no SSH endpoint.
	SSHAddr string
	SSHKeys string // authorized_keys file; the comment names the agent

	Nav nav.Options // navigation analytics (-nav-*, -top-n); Node, Now and Logger are filled in by New
}

// NewOptions returns the defaults.
func NewOptions() Options {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return Options{
		Addr:            "127.0.0.1:8080",
		DataDir:         "./data",
		Node:            host,
		AMQPExchange:    "switchboard",
		LogMaxAge:       7 * 24 * time.Hour,
		SnapshotEvery:   10000,
		StatsGroup:      "239.255.77.77:5554",
		StatsIface:      "lo",
		StatsInterval:   time.Second,
		Grace:           30 * time.Second,
		DefaultCapacity: 3,
		HistoryOnAssign: 50,
		MaxBody:         64 << 10,
		ShutdownTimeout: 30 * time.Second,
		AgentRate:       DefaultAgentRate,
		AgentBurst:      DefaultAgentBurst,
		Nav:             nav.NewOptions(),
	}
}

// Validate reports the first setting that cannot work, naming its flag.
func (o *Options) Validate() error {
	var errs []error
	if o.Addr == "" {
		errs = append(errs, errors.New("-addr: must not be empty"))
	} else if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		errs = append(errs, fmt.Errorf("-addr: %w", err))
	}
	if o.DataDir == "" {
		errs = append(errs, errors.New("-data: must not be empty"))
	}
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("-public-url: %q is not an http(s) URL", o.PublicURL))
		}
	}
	if o.AMQPURL != "" {
		u, err := url.Parse(o.AMQPURL)
		if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
			errs = append(errs, errors.New("-amqp: not an amqp:// or amqps:// URL"))
		}
	}
	if o.AMQPExchange != "" && !validExchange(o.AMQPExchange) {
		errs = append(errs, fmt.Errorf("-amqp-exchange: %q: use letters, digits, '-', '_', '.' or ':' (at most 200)", o.AMQPExchange))
	}
	if o.TwilioRegister {
		if o.PublicURL == "" {
			errs = append(errs, errors.New("-twilio-register: needs -public-url (the webhook URL is built from it)"))
		}
		if o.TwilioAccountSID == "" {
			errs = append(errs, errors.New("-twilio-register: needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM"))
		}
	}
	if o.AnswerTimeout < 0 {
		errs = append(errs, errors.New("-answer-timeout: must not be negative"))
	}
	if o.StatsInterval < 0 {
		errs = append(errs, errors.New("-stats-interval: must not be negative"))
	}
	if o.StatsInterval > 0 {
		// udpstats names the -stats-* flags in its errors.
		if err := (udpstats.Options{Group: o.StatsGroup, Iface: o.StatsIface, Interval: o.StatsInterval, Node: o.Node}).Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if (o.TwilioAccountSID == "") != (o.TwilioAuthToken == "") {
		errs = append(errs, errors.New("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set together"))
	}
	if o.TwilioAccountSID != "" && o.TwilioFrom == "" {
		errs = append(errs, errors.New("TWILIO_FROM: required with Twilio credentials (the number replies come from)"))
	}
	if o.TwilioAPIURL != "" {
		if u, err := url.Parse(o.TwilioAPIURL); err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("TWILIO_API_URL: %q is not a URL", o.TwilioAPIURL))
		}
	}
	if o.Grace <= 0 {
		errs = append(errs, errors.New("-grace: must be positive"))
	}
	if o.LogMaxAge < 0 || (o.LogMaxAge > 0 && o.LogMaxAge < time.Second) {
		errs = append(errs, errors.New("-log-max-age: must be 0 (keep everything) or at least 1s"))
	}
	if o.LogMaxBytes < 0 {
		errs = append(errs, errors.New("-log-max-bytes: must not be negative"))
	}
	if o.SnapshotEvery < 0 {
		errs = append(errs, errors.New("-snapshot-every: must not be negative"))
	}
	if o.DefaultCapacity <= 0 {
		errs = append(errs, errors.New("-capacity: must be positive"))
	}
	if o.HistoryOnAssign <= 0 || o.HistoryOnAssign > 200 {
		errs = append(errs, errors.New("-history: must be between 1 and 200"))
	}
	if o.MaxBody < 1024 {
		errs = append(errs, errors.New("-max-body: must be at least 1024"))
	}
	if o.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("-shutdown-timeout: must be positive"))
	}
	if o.SSHAddr != "" {
		if _, _, err := net.SplitHostPort(o.SSHAddr); err != nil {
			errs = append(errs, fmt.Errorf("-ssh-addr: %w", err))
		}
		if o.SSHKeys == "" {
			errs = append(errs, errors.New("-ssh-addr: needs -ssh-keys (the authorized_keys file naming the agents)"))
		}
		if o.Secret == "" {
			errs = append(errs, errors.New("-ssh-addr: needs -secret (SSH sessions sign in to the node with it)"))
		}
	}
	errs = append(errs, o.checkExposure()) // exposure.go
	errs = append(errs, o.Nav.Validate(), o.validateLimits())
	return errors.Join(errs...)
}

// Setting describes one configurable setting: its flag, its environment
// variables (first set wins) and its usage. Deploy files are checked against
// this table so they cannot drift from what the node reads.
type Setting struct {
	Flag  string   // "" when the setting has no flag
	Env   []string // environment variables, in order of precedence
	Usage string
	bind  func(fs *flag.FlagSet, o *Options, name, usage string)
	set   func(o *Options, v string) error
}

// Settings lists every setting the node reads, in documentation order.
func Settings() []Setting {
	str := func(p func(o *Options) *string) (func(*flag.FlagSet, *Options, string, string), func(*Options, string) error) {
		return func(fs *flag.FlagSet, o *Options, n, u string) { fs.StringVar(p(o), n, *p(o), u) },
			func(o *Options, v string) error { *p(o) = v; return nil }
	}
	dur := func(p func(o *Options) *time.Duration) (func(*flag.FlagSet, *Options, string, string), func(*Options, string) error) {
		return func(fs *flag.FlagSet, o *Options, n, u string) { fs.DurationVar(p(o), n, *p(o), u) },
			func(o *Options, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil {
					return err
				}
				*p(o) = d
				return nil
			}
	}
	integer := func(p func(o *Options) *int) (func(*flag.FlagSet, *Options, string, string), func(*Options, string) error) {
		return func(fs *flag.FlagSet, o *Options, n, u string) { fs.IntVar(p(o), n, *p(o), u) },
			func(o *Options, v string) error {
				i, err := strconv.Atoi(v)
				if err != nil {
					return err
				}
				*p(o) = i
				return nil
			}
	}
	int64s := func(p func(o *Options) *int64) (func(*flag.FlagSet, *Options, string, string), func(*Options, string) error) {
		return func(fs *flag.FlagSet, o *Options, n, u string) { fs.Int64Var(p(o), n, *p(o), u) },
			func(o *Options, v string) error {
				i, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return err
				}
				*p(o) = i
				return nil
			}
	}
	boolean := func(p func(o *Options) *bool) (func(*flag.FlagSet, *Options, string, string), func(*Options, string) error) {
		return func(fs *flag.FlagSet, o *Options, n, u string) { fs.BoolVar(p(o), n, *p(o), u) },
			func(o *Options, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return err
				}
				*p(o) = b
				return nil
			}
	}
	mk := func(flagName string, env []string, usage string, b func(*flag.FlagSet, *Options, string, string), s func(*Options, string) error) Setting {
		return Setting{Flag: flagName, Env: env, Usage: usage, bind: b, set: s}
	}
	var list []Setting
	add := func(s Setting) { list = append(list, s) }
	b, s := str(func(o *Options) *string { return &o.Addr })
	add(mk("addr", []string{"PORT", "SWITCHBOARD_ADDR"}, "HTTP listen address (PORT alone means \":PORT\")", b, s))
	list[0].set = func(o *Options, v string) error {
		if _, err := strconv.Atoi(v); err == nil {
			v = ":" + v // Heroku's PORT is a bare number
		}
		o.Addr = v
		return nil
	}
	b, s = str(func(o *Options) *string { return &o.DataDir })
	add(mk("data", []string{"SWITCHBOARD_DATA"}, "LevelDB directory", b, s))
	b, s = str(func(o *Options) *string { return &o.AMQPURL })
	add(mk("amqp", []string{"SWITCHBOARD_AMQP_URL", "CLOUDAMQP_URL"}, "RabbitMQ URL (nodes share its stream log); empty = the node alone, on its local log", b, s))
	b, s = str(func(o *Options) *string { return &o.AMQPExchange })
	add(mk("amqp-exchange", []string{"SWITCHBOARD_AMQP_EXCHANGE"}, "RabbitMQ topic exchange shared by the cluster, also the queue name prefix", b, s))
	b, s = dur(func(o *Options) *time.Duration { return &o.LogMaxAge })
	add(mk("log-max-age", []string{"SWITCHBOARD_LOG_MAX_AGE"}, "retention of the stream log, set only when the stream is first declared (0 = keep everything)", b, s))
	b, s = int64s(func(o *Options) *int64 { return &o.LogMaxBytes })
	add(mk("log-max-bytes", []string{"SWITCHBOARD_LOG_MAX_BYTES"}, "size limit of the stream log, set only when the stream is first declared (0 = none)", b, s))
	b, s = integer(func(o *Options) *int { return &o.SnapshotEvery })
	add(mk("snapshot-every", []string{"SWITCHBOARD_SNAPSHOT_EVERY"}, "publish a snapshot of the applied state every this many log entries (0 = never)", b, s))
	b, s = str(func(o *Options) *string { return &o.Node })
	add(mk("node", []string{"SWITCHBOARD_NODE"}, "node id in metrics and routing (default: host name)", b, s))
	b, s = str(func(o *Options) *string { return &o.PublicURL })
	add(mk("public-url", []string{"SWITCHBOARD_PUBLIC_URL"}, "the URL Twilio is configured with; webhook signatures are checked against it", b, s))
	b, s = str(func(o *Options) *string { return &o.Secret })
	add(mk("secret", []string{"SWITCHBOARD_SECRET"}, "signs agent tokens; required to accept agents", b, s))
	b, s = str(func(o *Options) *string { return &o.AdminToken })
	add(mk("admin-token", []string{"SWITCHBOARD_ADMIN_TOKEN"}, "bearer token for admin endpoints (GET /conversations/{phone}, PUT /products/{id}, /canned, /contacts)", b, s))
	b, s = str(func(o *Options) *string { return &o.StatsGroup })
	add(mk("stats-group", []string{"SWITCHBOARD_STATS_GROUP"}, "metrics multicast group host:port", b, s))
	b, s = str(func(o *Options) *string { return &o.StatsIface })
	add(mk("stats-iface", []string{"SWITCHBOARD_STATS_IFACE"}, "interface for metrics multicast; set to the LAN interface in production", b, s))
	b, s = dur(func(o *Options) *time.Duration { return &o.StatsInterval })
	add(mk("stats-interval", []string{"SWITCHBOARD_STATS_INTERVAL"}, "metrics emit period (0 disables metrics)", b, s))
	b, s = str(func(o *Options) *string { return &o.TwilioAccountSID })
	add(mk("", []string{"TWILIO_ACCOUNT_SID"}, "Twilio account SID; empty = console provider (replies are logged, not sent)", b, s))
	b, s = str(func(o *Options) *string { return &o.TwilioAuthToken })
	add(mk("", []string{"TWILIO_AUTH_TOKEN"}, "Twilio auth token: outbound SMS and the webhook signature key", b, s))
	b, s = str(func(o *Options) *string { return &o.TwilioFrom })
	add(mk("", []string{"TWILIO_FROM"}, "the Twilio number replies are sent from (E.164)", b, s))
	b, s = str(func(o *Options) *string { return &o.TwilioAPIURL })
	add(mk("", []string{"TWILIO_API_URL"}, "base URL of the SMS API (default Twilio's; tests point it at a fake)", b, s))
	bb, bs := boolean(func(o *Options) *bool { return &o.InsecureSkipSignature })
	add(mk("insecure-skip-signature", []string{"SWITCHBOARD_INSECURE_SKIP_SIGNATURE"}, "accept unsigned webhooks (development only)", bb, bs))
	bb, bs = boolean(func(o *Options) *bool { return &o.TwilioRegister })
	add(mk("twilio-register", []string{"SWITCHBOARD_TWILIO_REGISTER"}, "at start, set the Twilio number's SMS webhook to -public-url + /sms/twilio through Twilio's API", bb, bs))
	b, s = dur(func(o *Options) *time.Duration { return &o.Grace })
	add(mk("grace", []string{"SWITCHBOARD_GRACE"}, "how long a disconnected agent keeps its conversations", b, s))
	b, s = dur(func(o *Options) *time.Duration { return &o.AnswerTimeout })
	add(mk("answer-timeout", []string{"SWITCHBOARD_ANSWER_TIMEOUT"}, "offer a conversation to another available agent when its customer's message is unanswered this long (0 = off)", b, s))
	b, s = integer(func(o *Options) *int { return &o.DefaultCapacity })
	add(mk("capacity", []string{"SWITCHBOARD_CAPACITY"}, "conversations per agent when neither token nor agent names a capacity", b, s))
	b, s = dur(func(o *Options) *time.Duration { return &o.ShutdownTimeout })
	add(mk("shutdown-timeout", []string{"SWITCHBOARD_SHUTDOWN_TIMEOUT"}, "how long a stopping node drains before closing", b, s))
	origins := mk("allowed-origins", []string{"SWITCHBOARD_ALLOWED_ORIGINS"}, "comma-separated extra Origins allowed to open agent WebSockets", nil, nil)
	origins.bind = func(fs *flag.FlagSet, o *Options, n, u string) {
		fs.Func(n, u, func(v string) error { o.AllowedOrigins = splitList(v); return nil })
	}
	origins.set = func(o *Options, v string) error { o.AllowedOrigins = splitList(v); return nil }
	add(origins)
	b, s = str(func(o *Options) *string { return &o.SSHAddr })
	add(mk("ssh-addr", []string{"SWITCHBOARD_SSH_ADDR"}, "SSH agent desk listen address, e.g. :2222; empty = no SSH endpoint", b, s))
	b, s = str(func(o *Options) *string { return &o.SSHKeys })
	add(mk("ssh-keys", []string{"SWITCHBOARD_SSH_KEYS"}, "authorized_keys file of the SSH agents: \"ssh-ed25519 AAAA… alice [capacity=N]\"; re-read when it changes", b, s))
	list = append(list, navSettings()...)
	list = append(list, limitSettings()...)
	return list
}

// validExchange accepts the AMQP short-string names RabbitMQ allows, minus
// the odd characters that would make queue names awkward to manage.
func validExchange(name string) bool {
	if len(name) > 200 {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == ':':
		default:
			return false
		}
	}
	return true
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// LoadEnv applies the environment to o: for each setting the first of its
// variables that is set wins. Call it before binding flags so flags win.
func LoadEnv(o *Options, getenv func(string) string) error {
	for _, s := range Settings() {
		for _, name := range s.Env {
			v := getenv(name)
			if v == "" {
				continue
			}
			if err := s.set(o, v); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			break
		}
	}
	return nil
}

// BindFlags registers every setting that has a flag on fs, with o's current
// values as defaults.
func BindFlags(fs *flag.FlagSet, o *Options) {
	for _, s := range Settings() {
		if s.Flag == "" {
			continue
		}
		usage := s.Usage
		if len(s.Env) > 0 {
			usage += " (env " + strings.Join(s.Env, ", ") + ")"
		}
		s.bind(fs, o, s.Flag, usage)
	}
}
