package sshdesk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	teassh "charm.land/wish/v2/bubbletea"
	gossh "golang.org/x/crypto/ssh"

	"github.com/switchboard/switchboard/agent"
	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/token"
)

// handle runs one SSH session: the agent program, sized to the session's
// PTY, connected to the node's own /agent endpoint as the key's agent.
func (d *Server) handle(sess ssh.Session) {
	k, ok := sess.Context().Value(ctxKey{}).(Key)
	if !ok { // cannot happen: every signed-in connection has its key
		_ = sess.Exit(1)
		return
	}
	pty, winch, ok := sess.Pty()
	if !ok {
		fmt.Fprintf(sess.Stderr(), "switchboard: the agent desk needs a terminal: ssh -t -p PORT %s@HOST\r\n", k.Agent)
		_ = sess.Exit(1)
		return
	}
	ctx, end := context.WithCancelCause(d.ctx)
	defer end(nil)
	// The session's token expires after TokenTTL; a session never outlives
	// it, so its loopback connection can always reconnect.
	ctx, stop := context.WithTimeoutCause(ctx, d.opts.TokenTTL, errors.New("the session reached its longest life (TokenTTL); sign in again"))
	defer stop()
	stopWatch := context.AfterFunc(sess.Context(), func() { end(errors.New("the ssh connection closed")) })
	defer stopWatch()
	ds := &deskSession{agent: k.Agent, fingerprint: k.Fingerprint, end: end}
	if !d.register(ds) {
		_ = sess.Exit(1)
		return
	}
	defer d.unregister(ds)

	log := d.log.With("agent", k.Agent, "key", k.Fingerprint, "remote", sess.RemoteAddr().String())
	log.Info("ssh session started", "term", pty.Term, "width", pty.Window.Width, "height", pty.Window.Height)
	start := d.opts.Now()
	err := d.run(ctx, sess, k, winch)
	why := "the agent quit"
	if cause := context.Cause(ctx); cause != nil {
		why = cause.Error()
	}
	log.Info("ssh session ended", "duration", d.opts.Now().Sub(start).Round(time.Millisecond), "why", why, "err", err)
	if err != nil {
		_ = sess.Exit(1)
	}
}

// run is the session's program and its two helpers: the connection loop
// and the goroutine that follows resizes and keeps the client alive. All
// three stop before run returns.
func (d *Server) run(ctx context.Context, sess ssh.Session, k Key, winch <-chan ssh.Window) error {
	log := d.opts.Logger.With("agent", k.Agent) // the client and model add their component
	tok, err := token.Issue(d.opts.Secret, k.Agent, k.Capacity, d.opts.TokenTTL, d.opts.Now())
	if err != nil {
		return fmt.Errorf("sshdesk: token for %s: %w", k.Agent, err)
	}
	client, err := wsclient.New(wsclient.Options{URL: d.opts.AgentURL, Token: tok, Capacity: k.Capacity, Logger: log})
	if err != nil {
		return err
	}
	catalog, err := agent.CatalogURL(d.opts.AgentURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	model, err := agent.NewModel(agent.Config{
		Conn:       client,
		Events:     client.Events(),
		Done:       ctx.Done(),
		AltScreen:  true,
		ASCII:      !agent.UTF8Locale(envLookup(sess.Environ())),
		Analyzer:   d.analyzer,
		Bell:       sess.Stderr(),
		Logger:     log,
		CatalogURL: catalog,
		HTTPClient: d.http,
	})
	if err != nil {
		return err
	}
	pty, _, _ := sess.Pty()
	width, height := clampWindow(pty.Window)
	opts := append(teassh.MakeOptions(sess), tea.WithContext(ctx), tea.WithoutSignalHandler(), tea.WithWindowSize(width, height))
	p := tea.NewProgram(model, opts...)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := client.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("ssh session: connection loop stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		d.follow(ctx, sess, p, winch, cancel)
	}()
	_, err = p.Run()
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("sshdesk: program: %w", err)
	}
	return nil
}

// follow passes window changes to the program and sends keepalive requests
// every KeepAlive; a client that answers none for two periods is gone
// (lid closed, network lost) and its session ends, so the node's grace
// period starts instead of the agent looking present.
func (d *Server) follow(ctx context.Context, sess ssh.Session, p *tea.Program, winch <-chan ssh.Window, end context.CancelFunc) {
	conn, _ := sess.Context().Value(ssh.ContextKeyConn).(gossh.Conn)
	t := time.NewTicker(d.opts.KeepAlive)
	defer t.Stop()
	var answered chan struct{}
	for {
		select {
		case <-ctx.Done():
			return
		case w, ok := <-winch:
			if !ok {
				winch = nil // the session's requests ended; the connection is closing
				continue
			}
			width, height := clampWindow(w)
			p.Send(tea.WindowSizeMsg{Width: width, Height: height})
		case <-t.C:
			if conn == nil {
				continue
			}
			if answered != nil {
				select {
				case <-answered:
				default:
					d.log.Info("ssh session ended: no keepalive answer", "remote", sess.RemoteAddr().String())
					end()
					conn.Close()
					return
				}
			}
			answered = make(chan struct{})
			go keepalive(conn, answered)
		}
	}
}

// keepalive sends one keepalive request and closes answered when the
// client replies. It returns at the latest when the connection closes.
func keepalive(conn gossh.Conn, answered chan struct{}) {
	if _, _, err := conn.SendRequest("keepalive@openssh.com", true, nil); err == nil {
		close(answered)
	}
}

// The largest window a session is drawn for. The program keeps cell
// buffers the size of the window, so a client that claims a huge terminal
// (pty-req and window-change are the client's word) would make the node
// allocate gigabytes; no real terminal is larger.
const (
	maxColumns = 500
	maxRows    = 200
)

func clampWindow(w ssh.Window) (width, height int) {
	return min(max(w.Width, 1), maxColumns), min(max(w.Height, 1), maxRows)
}

// envLookup is a getenv over a session's environment ("K=V" pairs sent by
// the client, such as LANG), for the locale check.
func envLookup(env []string) func(string) string {
	return func(k string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], k+"="); ok {
				return v
			}
		}
		return ""
	}
}
