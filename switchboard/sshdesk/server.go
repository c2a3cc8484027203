package sshdesk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/switchboard/switchboard/transform"
)

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	Addr     string // listen address (-ssh-addr); required
	KeysFile string // authorized_keys naming agents (-ssh-keys); required
	HostKey  string // host key file, created on first start; required (the node uses <data>/ssh_host_ed25519_key)
	AgentURL string // the node's own ws://…/agent endpoint, on loopback; required
	Secret   []byte // the node's secret: signs each session's token; required

	Logger *slog.Logger     // zero: slog.Default(); component=ssh is added
	Now    func() time.Time // zero: time.Now

	KeysPoll     time.Duration // how often the keys file is checked for changes; zero: 2s
	LoginTimeout time.Duration // handshake and sign-in must finish within it; zero: 20s
	KeepAlive    time.Duration // keepalive request period; a client that misses two is dropped; zero: 30s
	TokenTTL     time.Duration // lifetime of a session's token, and so the longest session; zero: 24h

	// Per source IP address: a new connection every ConnEvery, bursts of
	// ConnBurst (zero: 1s and 10); a failed sign-in every AuthFailEvery,
	// bursts of AuthFailBurst, beyond which the source's connections are
	// refused until the bucket refills (zero: 1 min and 10). MaxSources
	// bounds the addresses remembered (zero: 10000).
	ConnEvery     time.Duration
	ConnBurst     int
	AuthFailEvery time.Duration
	AuthFailBurst int
	MaxSources    int
}

func (o *Options) defaults() error {
	switch {
	case o.Addr == "":
		return errors.New("sshdesk: -ssh-addr is required")
	case o.KeysFile == "":
		return errors.New("sshdesk: -ssh-keys is required with -ssh-addr")
	case o.HostKey == "":
		return errors.New("sshdesk: host key path is required")
	case len(o.Secret) == 0:
		return errors.New("sshdesk: -ssh-addr needs -secret (SWITCHBOARD_SECRET): each session signs in with a token made with it")
	}
	if u, err := url.Parse(o.AgentURL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("sshdesk: agent URL %q is not a ws:// URL", o.AgentURL)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(i *int, v int) {
		if *i <= 0 {
			*i = v
		}
	}
	def(&o.KeysPoll, 2*time.Second)
	def(&o.LoginTimeout, 20*time.Second)
	def(&o.KeepAlive, 30*time.Second)
	def(&o.TokenTTL, 24*time.Hour)
	def(&o.ConnEvery, time.Second)
	def(&o.AuthFailEvery, time.Minute)
	defInt(&o.ConnBurst, 10)
	defInt(&o.AuthFailBurst, 10)
	defInt(&o.MaxSources, 10000)
	return nil
}

// Server is the SSH agent desk. Create it with New, then Start and Close.
type Server struct {
	opts     Options
	log      *slog.Logger
	srv      *ssh.Server
	ln       net.Listener
	analyzer *transform.Analyzer // shared by every session's model
	http     *http.Client        // every session's catalog request, to the node itself

	keys      atomic.Pointer[Keys]
	keysData  []byte // the file content keys was parsed from (watcher only)
	conns     *perSource
	authFails *perSource
	logLimit  *perSource // one "connection refused" line per source a minute
	pending   sync.Map   // remote address → *attempt, while the connection is open

	ctx    context.Context // cancelled by Close: ends every session
	cancel context.CancelFunc
	wg     sync.WaitGroup // the server, the watcher, every connection and every session

	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	closed   bool
	sessions map[*deskSession]struct{}
	open     map[string]net.Conn // remote address → connection, from accept to connClosed
}

// attempt is what a connection tried while signing in, for the one log
// line its refusal gets.
type attempt struct {
	mu     sync.Mutex
	user   string
	reason string
}

func (a *attempt) refuse(user, reason string) {
	a.mu.Lock()
	a.user, a.reason = user, reason
	a.mu.Unlock()
}

// ctxKey keys the signed-in Key in a connection's ssh.Context.
type ctxKey struct{}

// New validates opts, reads the keys file and the host key (creating it
// the first time). Nothing listens until Start.
func New(opts Options) (*Server, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	data, err := readKeys(opts.KeysFile)
	if err != nil {
		return nil, err
	}
	keys, err := ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("sshdesk: -ssh-keys %s: %w", opts.KeysFile, err)
	}
	signer, err := LoadHostKey(opts.HostKey)
	if err != nil {
		return nil, err
	}
	analyzer, err := transform.NewAnalyzer(transform.AnalyzerOptions{})
	if err != nil {
		return nil, fmt.Errorf("sshdesk: %w", err)
	}
	d := &Server{
		opts:     opts,
		log:      opts.Logger.With("component", "ssh"),
		analyzer: analyzer,
		// The catalog is read once a session, from the node on loopback:
		// no proxy from the environment, and no connection kept idle, so
		// an ended session leaves no connection (and no goroutine) behind.
		http:      &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		keysData:  data,
		conns:     newPerSource(opts.ConnEvery, opts.ConnBurst, opts.MaxSources, opts.Now),
		authFails: newPerSource(opts.AuthFailEvery, opts.AuthFailBurst, opts.MaxSources, opts.Now),
		logLimit:  newPerSource(time.Minute, 1, opts.MaxSources, opts.Now),
		sessions:  map[*deskSession]struct{}{},
		open:      map[string]net.Conn{},
	}
	d.keys.Store(keys)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.srv = &ssh.Server{
		Addr:             opts.Addr,
		HostSigners:      []ssh.Signer{signer},
		Version:          "Switchboard",
		Handler:          d.handle,
		PublicKeyHandler: d.authorize,
		// No password, keyboard-interactive or "none" sign-in: only keys.
		ConnCallback:             d.accept,
		ConnectionFailedCallback: d.refused,
		ConnectionCloseCallback:  d.connClosed,
		SessionRequestCallback: func(_ ssh.Session, typ string) bool {
			return typ == "shell" // no exec, no subsystem (sftp, scp)
		},
		HandshakeTimeout: opts.LoginTimeout,
		// Only interactive sessions: no direct-tcpip (local forwarding),
		// no tcpip-forward (remote forwarding), no agent or X11 channels.
		ChannelHandlers: map[string]ssh.ChannelHandler{"session": ssh.DefaultSessionHandler},
		RequestHandlers: map[string]ssh.RequestHandler{},
		// The server's own goroutines log through slog's default; the
		// node's default handler is its log.
	}
	return d, nil
}

// Start listens and serves in the background.
func (d *Server) Start() error {
	ln, err := net.Listen("tcp", d.opts.Addr)
	if err != nil {
		return fmt.Errorf("sshdesk: listen on %s (-ssh-addr): %w", d.opts.Addr, err)
	}
	d.ln = ln
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, ssh.ErrServerClosed) {
			d.log.Error("ssh server stopped", "err", err)
		}
	}()
	go func() {
		defer d.wg.Done()
		d.watchKeys()
	}()
	d.log.Info("ssh agent desk listening", "addr", ln.Addr().String(), "keys", d.opts.KeysFile, "agents_keys", d.keys.Load().Len(),
		"host_key", gossh.FingerprintSHA256(d.srv.HostSigners[0].PublicKey()))
	return nil
}

// Addr is the address the server listens on (after Start).
func (d *Server) Addr() net.Addr { return d.ln.Addr() }

// Close ends every session, closes the listener and the connections and
// waits for every goroutine of the server to finish. Agents keep their
// conversations for the node's grace period, as when any connection drops.
func (d *Server) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.close() })
	return d.closeErr
}

func (d *Server) close() error {
	d.mu.Lock()
	d.closed = true
	open := make([]net.Conn, 0, len(d.open))
	for _, c := range d.open {
		open = append(open, c)
	}
	d.mu.Unlock()
	d.cancel()
	err := d.srv.Close()
	// srv.Close closes the connections that have signed in; those still
	// in their handshake are closed here. The server's Shutdown is not used
	// to wait for them: it races a handshake finishing at that moment
	// (charm.land/ssh v0.4.3 adds to its WaitGroup after Wait began), so
	// each connection is counted in d.wg from accept to connClosed instead.
	for _, c := range open {
		_ = c.Close()
	}
	d.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// accept applies the per-source limits before any SSH byte is read.
func (d *Server) accept(ctx ssh.Context, c net.Conn) net.Conn {
	ip := sourceIP(c.RemoteAddr())
	// A flood from one address is cut here; it gets one log line a minute.
	if d.authFails.empty(ip) {
		if d.logLimit.take(ip) {
			d.log.Warn("ssh connection refused: too many failed sign-ins from this address (logged once a minute)", "remote", c.RemoteAddr().String())
		}
		return nil
	}
	if !d.conns.take(ip) {
		if d.logLimit.take(ip) {
			d.log.Warn("ssh connection refused: too many connections from this address (logged once a minute)", "remote", c.RemoteAddr().String())
		}
		return nil
	}
	remote := c.RemoteAddr().String()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.open[remote] = c
	d.wg.Add(1) // done in connClosed, which the server calls for every connection accept lets through
	d.pending.Store(remote, &attempt{reason: "no key offered"})
	return c
}

// connClosed forgets a connection and its sign-in attempt (after refused,
// if it was).
func (d *Server) connClosed(c net.Conn) {
	remote := c.RemoteAddr().String()
	d.pending.Delete(remote)
	d.mu.Lock()
	delete(d.open, remote)
	d.mu.Unlock()
	d.wg.Done()
}

// authorize lets a key sign in when the keys file lists it with the user
// name as its agent. The file is the one in force at this moment.
func (d *Server) authorize(ctx ssh.Context, pk ssh.PublicKey) bool {
	a, _ := d.pending.Load(ctx.RemoteAddr().String())
	k, ok := d.keys.Load().Lookup(pk)
	switch {
	case !ok:
		if a != nil {
			a.(*attempt).refuse(ctx.User(), "key not in the keys file "+gossh.FingerprintSHA256(pk))
		}
		return false
	case k.Agent != ctx.User():
		if a != nil {
			a.(*attempt).refuse(ctx.User(), "the key signs in as "+k.Agent+", not as this user")
		}
		return false
	}
	ctx.SetValue(ctxKey{}, k)
	return true
}

// refused counts a connection that did not sign in (refused key, wrong
// user, timeout, garbage) against its source, and logs it once.
func (d *Server) refused(c net.Conn, err error) {
	ip := sourceIP(c.RemoteAddr())
	d.authFails.take(ip)
	attrs := []any{"remote", c.RemoteAddr().String(), "err", err}
	if a, ok := d.pending.Load(c.RemoteAddr().String()); ok {
		at := a.(*attempt)
		at.mu.Lock()
		attrs = append(attrs, "user", at.user, "reason", at.reason)
		at.mu.Unlock()
	}
	d.log.Info("ssh sign-in refused", attrs...)
}

func readKeys(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sshdesk: -ssh-keys: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("sshdesk: -ssh-keys %s: %w", path, err)
	}
	if len(data) > MaxKeysFile {
		return nil, fmt.Errorf("sshdesk: -ssh-keys %s: larger than %d bytes", path, MaxKeysFile)
	}
	return data, nil
}
