package loadgen

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Options configure a Runner. NewOptions returns every default; New
// validates. Errors name the sbload flag.
type Options struct {
	// Targets are the nodes' base URLs (http://127.0.0.1:8080). Webhooks,
	// agents and navigation events are spread over them round-robin, as a
	// load balancer would. At least one is required.
	Targets []string
	// PublicURL is the URL webhooks are signed for (the nodes'
	// -public-url); "" = each target's own URL.
	PublicURL string

	Secret     string // SWITCHBOARD_SECRET: signs the simulated agents' tokens; required when Agents > 0
	AccountSID string // TWILIO_ACCOUNT_SID the nodes use; default a fixed test SID
	AuthToken  string // TWILIO_AUTH_TOKEN: signs webhooks; "" = unsigned (nodes with -insecure-skip-signature)
	From       string // TWILIO_FROM, the switchboard's number (the To of inbound SMS); default +15550000000
	AdminToken string // optional: lets the report say whether a lost message was stored at all

	// TwilioAddr is where the fake Twilio Messages API listens (the nodes'
	// TWILIO_API_URL points here); "" = no fake (replies are not checked).
	TwilioAddr string
	// TwilioListener, when set, serves the fake API on this listener
	// instead of listening on TwilioAddr (tests: a kernel-chosen port known
	// before the node starts). Run closes it.
	TwilioListener net.Listener

	Rate      float64       // inbound messages per second, open loop; 0 = no texting
	MaxRate   bool          // closed loop instead: every worker posts back to back (finds the ceiling; latency is then service time only)
	Duration  time.Duration // how long traffic is generated; 0 = until the context ends
	Drain     time.Duration // after Duration, how long to wait for deliveries and replies; default 10s
	Customers int           // distinct customer phones; default 200
	Workers   int           // concurrent webhook requests at most; default 256
	Timeout   time.Duration // per HTTP request; default 10s

	DupShare   float64 // share of webhooks delivered twice (Twilio retries); default 0.02
	BurstShare float64 // share of messages that start a burst from one number; default 0.02
	BurstSize  int     // messages in a burst; default 5

	Agents       int           // simulated agents; default 10
	Capacity     int           // conversations per agent; default 25
	Think        time.Duration // agent think time before a reply (±50% jitter); default 200ms
	ReplyShare   float64       // share of new messages an agent answers; default 0.5
	ReleaseShare float64       // share of acknowledged replies after which the agent releases the conversation; default 0.1

	NavRate      float64 // navigation events per second; default 0
	NavLinkShare float64 // share of shop users linked to a texting customer's phone; default 0.3

	Demo      bool // calm, lively traffic for a person watching the agent client
	DemoAgent bool // in demo mode, also run one simulated agent
	// DemoPace scales the demo customers' pauses (browsing, between texts);
	// 0 or 1 is a pace a person can read along, tests use less.
	DemoPace float64

	PIDs []int // node processes whose RSS is sampled (Linux /proc), for memory per connection
	// CPUPIDs are processes (the nodes, the broker) whose CPU time over the
	// send phase is reported beside sbload's own (Linux /proc).
	CPUPIDs []int
	Idle    time.Duration // with Rate 0: how long connected agents stay idle before RSS is sampled; default 2s

	Seed        uint64           // random seed; 0 = from the clock
	Progress    io.Writer        // live progress; nil = none
	ProgressTTY bool             // Progress is a terminal: redraw one line each second (else a full line every 5s)
	Logger      *slog.Logger     // default slog.Default()
	Now         func() time.Time // default time.Now
	RunID       string           // 1 to 6 digits naming this run's agents and phones, so runs against one node do not mix; default random
}

// NewOptions returns the defaults.
func NewOptions() Options {
	return Options{
		AccountSID:   "AC00000000000000000000000000000000",
		From:         "+15550000000",
		TwilioAddr:   "127.0.0.1:8099",
		Rate:         100,
		Duration:     10 * time.Second,
		Drain:        10 * time.Second,
		Customers:    200,
		Workers:      256,
		Timeout:      10 * time.Second,
		DupShare:     0.02,
		BurstShare:   0.02,
		BurstSize:    5,
		Agents:       10,
		Capacity:     25,
		Think:        200 * time.Millisecond,
		ReplyShare:   0.5,
		ReleaseShare: 0.1,
		NavLinkShare: 0.3,
		Idle:         2 * time.Second,
	}
}

// DemoOptions returns the defaults of -demo: a handful of customers, one
// message every few seconds, product browsing, no simulated agent, no end.
func DemoOptions() Options {
	o := NewOptions()
	o.Demo = true
	o.Customers = 6
	o.Agents = 0
	o.Duration = 0
	o.Rate = 0
	o.DupShare = 0
	o.BurstShare = 0
	o.Think = 4 * time.Second
	o.ReplyShare = 1
	o.ReleaseShare = 0.25
	o.Capacity = 10
	return o
}

// Validate reports every setting that cannot work, naming its flag.
func (o *Options) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("-%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if len(o.Targets) == 0 {
		bad("target", "at least one node URL is required")
	}
	for _, t := range o.Targets {
		if u, err := url.Parse(t); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("target", "%q is not an http(s) URL", t)
		}
	}
	if o.PublicURL != "" {
		if u, err := url.Parse(o.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("public-url", "%q is not an http(s) URL", o.PublicURL)
		}
	}
	if _, err := protocol.NormalizePhone(o.From); err != nil {
		bad("from", "%v", err)
	}
	if o.TwilioAddr != "" && o.TwilioListener == nil {
		if _, _, err := net.SplitHostPort(o.TwilioAddr); err != nil {
			bad("twilio-addr", "%v", err)
		}
	}
	if o.Rate < 0 || o.NavRate < 0 {
		bad("rate", "must not be negative")
	}
	if o.Duration < 0 || o.Drain < 0 || o.Idle < 0 {
		bad("duration", "durations must not be negative")
	}
	if o.Customers < 1 || o.Customers > 99999 {
		bad("customers", "must be between 1 and 99999")
	}
	if o.Workers < 1 {
		bad("workers", "must be positive")
	}
	if o.Timeout <= 0 {
		bad("timeout", "must be positive")
	}
	for _, s := range []struct {
		flag string
		v    float64
	}{{"dup", o.DupShare}, {"burst", o.BurstShare}, {"reply", o.ReplyShare}, {"release", o.ReleaseShare}, {"nav-link", o.NavLinkShare}} {
		if s.v < 0 || s.v > 1 {
			bad(s.flag, "a share must be between 0 and 1")
		}
	}
	if o.BurstSize < 1 {
		bad("burst-size", "must be positive")
	}
	if o.Agents < 0 {
		bad("agents", "must not be negative")
	}
	if o.Capacity < 1 || o.Capacity > protocol.MaxCapacity {
		bad("capacity", "must be between 1 and %d", protocol.MaxCapacity)
	}
	if o.Think < 0 {
		bad("think", "must not be negative")
	}
	if (o.Agents > 0 || (o.Demo && o.DemoAgent)) && o.Secret == "" {
		bad("secret", "required to sign the simulated agents' tokens (SWITCHBOARD_SECRET)")
	}
	if o.RunID != "" && (len(o.RunID) > 6 || strings.Trim(o.RunID, "0123456789") != "") {
		bad("run-id", "must be 1 to 6 digits (it is part of the customers' phone numbers)")
	}
	return errors.Join(errs...)
}

// withDefaults fills what the caller left empty and cannot be checked.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.RunID == "" {
		r := rand.New(rand.NewPCG(o.Seed, 0x5b10ad))
		o.RunID = fmt.Sprintf("%04d", r.IntN(10000))
	}
	for i, t := range o.Targets {
		o.Targets[i] = strings.TrimSuffix(t, "/")
	}
	return o
}
