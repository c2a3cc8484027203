// Command switchboard runs a Switchboard node, or prints an agent token.
//
//	switchboard [serve] [flags]      run a node (see -help)
//	switchboard token NAME [-capacity N] [-ttl D]
//	switchboard products import FILE [-data DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/switchboard"
	"github.com/switchboard/switchboard/switchboard/sshdesk"
	"github.com/switchboard/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/switchboard/token"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // -help asked for the usage, which was printed
		}
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "token" || args[0] == "products") {
		cmd, args = args[0], args[1:]
	}
	opts := switchboard.NewOptions()
	if err := switchboard.LoadEnv(&opts, os.Getenv); err != nil {
		return err
	}
	switch cmd {
	case "token":
		return tokenCmd(args, opts, stdout, stderr)
	case "products":
		return productsCmd(args, opts, stdout, stderr)
	default:
		return serve(args, opts, stderr)
	}
}

func serve(args []string, opts switchboard.Options, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	switchboard.BindFlags(fs, &opts)
	fs.Usage = func() { usage(fs, stderr, os.Getenv) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		// Flags after a stray word are not parsed: "-data d x -addr
		// 127.0.0.1:9000" would serve on the default address.
		return fmt.Errorf("unexpected argument %q (commands: serve, token, products; then flags)", fs.Arg(0))
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	// Listen before anything is opened, so a taken port is the one thing
	// reported, not an error after the store and the catalog were loaded.
	ln, err := listen(opts.Addr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	n, err := switchboard.New(opts, switchboard.Config{Logger: log, Listener: ln})
	if err != nil {
		ln.Close()
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("-data %s: %w", opts.DataDir, store.ErrLocked)
		}
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := n.Start(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, `
Switchboard is running on %s (webhook: POST /sms/twilio).
Connect an agent:
  SWITCHBOARD_SECRET=<the node's secret> go run ./cmd/switchboard token alice
  go run ./cmd/agent -url ws://127.0.0.1:%d/agent -token <printed token>

`, n.Addr(), port(n))
	// A second signal during the shutdown kills the process.
	context.AfterFunc(ctx, stop)
	if opts.SSHAddr == "" {
		return n.Wait(ctx)
	}
	desk, err := startDesk(opts, n, log)
	if err != nil {
		n.Shutdown(context.Background())
		return err
	}
	defer desk.Close()
	fmt.Fprintf(stderr, "Agents listed in %s sign in over SSH: ssh -p %s NAME@<this host>\n\n", opts.SSHKeys, sshPort(desk))
	// SSH sessions end first, then the node: they are agents of the node.
	nodeCtx, nodeStop := context.WithCancel(context.Background())
	defer nodeStop()
	context.AfterFunc(ctx, func() { desk.Close(); nodeStop() })
	return n.Wait(nodeCtx)
}

// startDesk serves the agent client over SSH (-ssh-addr): each session is
// an agent connection to this node's own /agent endpoint on loopback.
func startDesk(opts switchboard.Options, n *switchboard.Node, log *slog.Logger) (*sshdesk.Server, error) {
	host := "127.0.0.1"
	if a, ok := n.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		host = a.IP.String()
	}
	desk, err := sshdesk.New(sshdesk.Options{
		Addr:     opts.SSHAddr,
		KeysFile: opts.SSHKeys,
		HostKey:  filepath.Join(opts.DataDir, sshdesk.HostKeyFile),
		AgentURL: "ws://" + net.JoinHostPort(host, strconv.Itoa(port(n))) + "/agent",
		Secret:   []byte(opts.Secret),
		Logger:   log.With("node", opts.Node),
	})
	if err != nil {
		return nil, err
	}
	return desk, desk.Start()
}

func port(n *switchboard.Node) int {
	if a, ok := n.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

func sshPort(d *sshdesk.Server) string {
	_, p, _ := net.SplitHostPort(d.Addr().String())
	return p
}

func tokenCmd(args []string, opts switchboard.Options, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchboard token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: switchboard token NAME [-capacity N] [-ttl D]  (signs with SWITCHBOARD_SECRET or -secret)")
		fs.PrintDefaults()
	}
	capacity := fs.Int("capacity", 0, "conversations at once (0 = the node's default)")
	ttl := fs.Duration("ttl", 30*24*time.Hour, "how long the token is valid")
	// The default stays empty so -h never prints the secret from the
	// environment; SWITCHBOARD_SECRET is used when -secret is not given.
	secret := fs.String("secret", "", "the nodes' shared secret (default: env SWITCHBOARD_SECRET)")
	// Allow the name before or after the flags.
	var name string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if name == "" && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		// Flags after a stray word are not parsed: refuse rather than
		// print a token without the capacity or ttl the user asked for.
		fs.Usage()
		return fmt.Errorf("token: unexpected argument %q (one NAME, then flags)", rest[0])
	}
	if name == "" {
		fs.Usage()
		return errors.New("token: agent NAME is required")
	}
	if *secret == "" {
		*secret = opts.Secret
	}
	if *secret == "" {
		return errors.New("token: set SWITCHBOARD_SECRET (the same secret the nodes use)")
	}
	tok, err := token.Issue([]byte(*secret), name, *capacity, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func productsCmd(args []string, opts switchboard.Options, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchboard products", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", opts.DataDir, "LevelDB directory of the (stopped) node (env SWITCHBOARD_DATA)")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprintln(stderr, "usage: switchboard products import FILE [-data DIR]")
		return flag.ErrHelp
	}
	if len(args) < 2 || args[0] != "import" {
		fmt.Fprintln(stderr, "usage: switchboard products import FILE [-data DIR]")
		return errors.New("products: expected 'import FILE'")
	}
	file := args[1]
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("products import: %w", err)
	}
	defer f.Close()
	n, err := switchboard.ImportProducts(*dir, f)
	if err != nil {
		return fmt.Errorf("products import %s: %w", file, err)
	}
	fmt.Fprintf(stdout, "imported %d products into %s\n", n, *dir)
	return nil
}
