package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	tea "charm.land/bubbletea/v2"

	"github.com/switchboard/switchboard/agent/wsclient"
)

// Options configures Run. Zero values take the documented defaults.
type Options struct {
	URL      string // node WebSocket URL (-url, SWITCHBOARD_URL); required
	Token    string // bearer token (-token, SWITCHBOARD_TOKEN); required
	Away     bool   // start away (-away)
	ASCII    bool   // ASCII marks and glyphs (-ascii); also chosen when the locale is not UTF-8
	Capacity int    // capacity sent with available; zero: the node's default
	LogPath  string // log file (-log); zero: DefaultLogPath()
	// CatalogURL is where product titles are read (GET /products); zero:
	// derived from URL by CatalogURL (same host, http or https).
	CatalogURL string
	// Supervisor runs the supervisor's screen (NewSupervisor) instead of
	// an agent's; Token is then the node's admin token.
	Supervisor bool

	Input     io.Reader // zero: the terminal
	Output    io.Writer // zero: the terminal
	AltScreen bool      // draw on the alternate screen (the binary sets it)
}

// DefaultLogPath is where logs go when -log is not given: a file in the
// user's cache directory, else in the temporary directory. Never the
// terminal the UI draws on.
func DefaultLogPath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	} else {
		dir = filepath.Join(dir, "switchboard")
	}
	return filepath.Join(dir, "agent.log")
}

// UTF8Locale reports whether the environment's locale suggests a UTF-8
// terminal (LC_ALL, then LC_CTYPE, then LANG, as setlocale reads them).
func UTF8Locale(getenv func(string) string) bool {
	for _, k := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if v := getenv(k); v != "" {
			v = strings.ToLower(v)
			return strings.Contains(v, "utf-8") || strings.Contains(v, "utf8")
		}
	}
	return false
}

// Run connects to the node and runs the UI until the agent quits or ctx is
// done.
func Run(ctx context.Context, opts Options) (err error) {
	if opts.LogPath == "" {
		opts.LogPath = DefaultLogPath()
	}
	if err := os.MkdirAll(filepath.Dir(opts.LogPath), 0o700); err != nil {
		return fmt.Errorf("agent: -log %s: %w", opts.LogPath, err)
	}
	lf, err := os.OpenFile(opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("agent: -log %s: %w", opts.LogPath, err)
	}
	defer lf.Close()
	logger := slog.New(slog.NewTextHandler(lf, nil))
	slog.SetDefault(logger) // anything logging through the default goes to the file too

	client, err := wsclient.New(wsclient.Options{URL: opts.URL, Token: opts.Token, Away: opts.Away, Capacity: opts.Capacity, Logger: logger, NoPresence: opts.Supervisor})
	if err != nil {
		return err
	}
	if opts.CatalogURL == "" {
		if opts.CatalogURL, err = CatalogURL(opts.URL); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := Config{
		CatalogURL: opts.CatalogURL,
		Conn:       client,
		Done:       ctx.Done(),
		Events:     client.Events(),
		Away:       opts.Away,
		AltScreen:  opts.AltScreen,
		ASCII:      opts.ASCII,
		Hyperlinks: !opts.ASCII && HyperlinkTerminal(os.Getenv),
		Bell:       os.Stderr,
		Logger:     logger,
	}
	var model tea.Model
	if opts.Supervisor {
		model, err = NewSupervisor(cfg)
	} else {
		model, err = NewModel(cfg)
	}
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := client.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("connection loop stopped", "component", "agent", "err", err)
		}
	}()
	defer wg.Wait() // after cancel (deferred later, runs first)
	defer cancel()

	// Bubble Tea v2 asks the terminal whether it supports synchronized
	// output (mode 2026) and then wraps every frame in it, so a frame is
	// never shown half drawn; it also asks for key disambiguation, which is
	// what tells Shift+Enter from Enter where the terminal can.
	popts := []tea.ProgramOption{tea.WithContext(ctx)}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		popts = append(popts, tea.WithOutput(opts.Output))
	}
	logger.Info("starting", "component", "agent", "away", opts.Away, "ascii", opts.ASCII)
	_, err = tea.NewProgram(model, popts...).Run()
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("agent: ui: %w", err)
	}
	return nil
}
