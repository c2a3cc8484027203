package udpstats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ListenOptions configure [Listen]. Every zero value means the default named
// on the field.
type ListenOptions struct {
	// Group is the multicast group and port. Zero: DefaultGroup.
	Group string
	// Iface is the interface to join the group on. Zero: DefaultIface.
	Iface string
	// ReadBuffer is the socket receive buffer asked for; the kernel caps it
	// at net.core.rmem_max. Zero: 4 MiB.
	ReadBuffer int
	// Aggregator configures the Aggregator the Listener feeds.
	Aggregator AggregatorOptions
	// Now is the listener's clock. Zero: time.Now.
	Now func() time.Time
	// TickEvery is how often Aggregator.Tick runs. Zero: 100ms.
	TickEvery time.Duration
	// Logger: zero slog.Default().
	Logger *slog.Logger
}

// Listener receives the group's datagrams into an Aggregator.
type Listener struct {
	conn *net.UDPConn
	agg  *Aggregator
	opts ListenOptions
	log  *slog.Logger
	addr *net.UDPAddr

	stopOnce sync.Once
	stopCtx  func() bool
	done     chan struct{}
	closeErr error
}

// Listen joins the group on the interface and starts one goroutine that
// reads datagrams into an Aggregator and ticks it, until ctx is done or
// Close is called. Errors name the operation (listen, join).
func Listen(ctx context.Context, opts ListenOptions) (*Listener, error) {
	if opts.Group == "" {
		opts.Group = DefaultGroup
	}
	if opts.Iface == "" {
		opts.Iface = DefaultIface
	}
	if opts.ReadBuffer == 0 {
		opts.ReadBuffer = 4 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TickEvery <= 0 {
		opts.TickEvery = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Aggregator.Logger == nil {
		opts.Aggregator.Logger = opts.Logger
	}
	group, err := groupAddr(opts.Group)
	if err != nil {
		return nil, fmt.Errorf("udpstats: listen: %w", err)
	}
	conn, err := openReceiver(ctx, group, opts.Iface, opts.ReadBuffer)
	if err != nil {
		return nil, err
	}
	l := &Listener{
		conn: conn,
		agg:  NewAggregator(opts.Aggregator),
		opts: opts,
		log:  opts.Logger.With("component", "udpstats"),
		addr: group,
		done: make(chan struct{}),
	}
	l.stopCtx = context.AfterFunc(ctx, func() { _ = l.Close() })
	go l.run()
	return l, nil
}

// Aggregator is the Aggregator this Listener feeds.
func (l *Listener) Aggregator() *Aggregator { return l.agg }

// Done is closed when the reading goroutine has stopped.
func (l *Listener) Done() <-chan struct{} { return l.done }

// Close stops the Listener and waits for its goroutine. Safe to call more
// than once and concurrently.
func (l *Listener) Close() error {
	l.stopOnce.Do(func() {
		l.stopCtx()
		if err := l.conn.Close(); err != nil {
			l.closeErr = fmt.Errorf("udpstats: close listener: %w", err)
		}
	})
	<-l.done
	return l.closeErr
}

func (l *Listener) run() {
	defer close(l.done)
	buf := make([]byte, 64<<10)
	nextTick := l.opts.Now().Add(l.opts.TickEvery)
	var lastErr time.Time
	var lastFrom netip.AddrPort
	var lastFromStr string
	for {
		// The read deadline doubles as the tick timer: one goroutine, no
		// locks between reading and ticking.
		_ = l.conn.SetReadDeadline(time.Now().Add(l.opts.TickEvery))
		n, from, err := l.conn.ReadFromUDPAddrPort(buf)
		now := l.opts.Now()
		if err == nil {
			if from != lastFrom { // one sender sends many datagrams: format once
				lastFrom, lastFromStr = from, from.String()
			}
			l.agg.Add(now, lastFromStr, buf[:n])
		} else if errors.Is(err, net.ErrClosed) {
			return
		} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			if time.Since(lastErr) > 10*time.Second { // don't flood the log
				lastErr = time.Now()
				l.log.Warn("read failed; still listening", "group", l.addr, "err", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !now.Before(nextTick) {
			l.agg.Tick(now)
			nextTick = now.Add(l.opts.TickEvery)
		}
	}
}

// GroupWriter sends raw datagrams to a group on one interface; for tools
// and tests that need to put their own bytes on the group.
type GroupWriter struct {
	conn  *net.UDPConn
	group *net.UDPAddr
}

// DialGroup opens a GroupWriter to group on iface with the given TTL.
func DialGroup(group, iface string, ttl int) (*GroupWriter, error) {
	g, err := groupAddr(group)
	if err != nil {
		return nil, fmt.Errorf("udpstats: dial: %w", err)
	}
	c, err := openSender(iface, ttl)
	if err != nil {
		return nil, err
	}
	return &GroupWriter{conn: c, group: g}, nil
}

// Write sends b as one datagram.
func (w *GroupWriter) Write(b []byte) (int, error) { return w.conn.WriteToUDP(b, w.group) }

// Close releases the socket.
func (w *GroupWriter) Close() error { return w.conn.Close() }
