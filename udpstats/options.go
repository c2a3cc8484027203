package udpstats

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// Defaults shared by the node and the monitor; DESIGN.md is the contract.
const (
	DefaultGroup    = "239.255.77.77:5554"
	DefaultIface    = "lo"
	DefaultTTL      = 1
	DefaultInterval = time.Second
	DefaultPrefix   = "switchboard."

	// MaxDatagram is the largest datagram the emitter sends: an Ethernet MTU
	// of 1500 less IPv4 (20) and UDP (8) headers and some room for tunnels.
	MaxDatagram = 1432

	maxNameLen = 200
)

// Options configure an [Emitter]. The zero value of every field means its
// default, so Options{Node: "n1"} is a complete configuration.
type Options struct {
	// Group is the multicast group and port, IPv4. Zero: DefaultGroup.
	Group string
	// Iface is the interface multicast is sent on. Zero: DefaultIface ("lo"),
	// so nothing leaves the machine unless the operator says so.
	Iface string
	// TTL is the multicast TTL. Zero: DefaultTTL (1, the local network).
	// Set ZeroTTL to send with TTL 0 (this host only).
	TTL int
	// ZeroTTL forces TTL 0, which the zero value of TTL cannot express.
	ZeroTTL bool
	// Interval is the emit period of Run. Zero: DefaultInterval (1s).
	Interval time.Duration
	// Node is the value of the node tag on every line. Zero: the host name.
	Node string
	// Prefix is put before every metric name. Zero: DefaultPrefix
	// ("switchboard."); set NoPrefix for none.
	Prefix string
	// NoPrefix sends names without any prefix.
	NoPrefix bool
	// Now is the clock used to measure interval_ms. Zero: time.Now.
	Now func() time.Time
	// Tick, when set, replaces Run's ticker: Run flushes once per value
	// received. Tests use it to drive intervals exactly.
	Tick <-chan time.Time
	// RetryEvery is how often a failed socket set-up is retried, at flush
	// time. Zero: 30s.
	RetryEvery time.Duration
	// Logger receives the emitter's few log lines. Zero: slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.Iface == "" {
		o.Iface = DefaultIface
	}
	switch {
	case o.ZeroTTL:
		o.TTL = 0
	case o.TTL == 0:
		o.TTL = DefaultTTL
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Node == "" {
		o.Node = hostname()
	}
	if o.NoPrefix {
		o.Prefix = ""
	} else if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RetryEvery == 0 {
		o.RetryEvery = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate reports the first invalid field, naming the node flag that sets
// it, so a node can refuse a bad command line before it starts. NewEmitter
// itself never fails: it logs the same error and stays silent.
func (o Options) Validate() error {
	o = o.withDefaults()
	if _, err := groupAddr(o.Group); err != nil {
		return fmt.Errorf("-stats-group: %w", err)
	}
	if o.TTL < 0 || o.TTL > 255 {
		return fmt.Errorf("udpstats: TTL %d is not in 0..255", o.TTL)
	}
	if o.Interval < 10*time.Millisecond {
		return fmt.Errorf("-stats-interval: %s is shorter than 10ms", o.Interval)
	}
	if len(sanitize(o.Node)) > maxNameLen {
		return fmt.Errorf("-node: %q is longer than %d bytes", o.Node, maxNameLen)
	}
	return nil
}

// groupAddr parses and checks an IPv4 multicast group address "ip:port".
func groupAddr(s string) (*net.UDPAddr, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return nil, fmt.Errorf("group %q: %w", s, err)
	}
	ip := net.ParseIP(host).To4()
	if ip == nil || !ip.IsMulticast() {
		return nil, fmt.Errorf("group %q: %q is not an IPv4 multicast address (224.0.0.0/4)", s, host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("group %q: bad port %q", s, port)
	}
	return &net.UDPAddr{IP: ip, Port: p}, nil
}

// ErrUnsupported is returned where multicast set-up is not implemented.
var ErrUnsupported = errors.New("udpstats: multicast sockets are only implemented on Linux")
