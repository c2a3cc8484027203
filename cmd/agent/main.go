// Command agent is the switchboard's terminal client for agents.
//
//	agent -url ws://127.0.0.1:8080/agent -token TOKEN [-away] [-ascii] [-log FILE]
//	agent -url ws://127.0.0.1:8080/agent -supervisor -token ADMIN_TOKEN
//
// Every flag has an environment variable (SWITCHBOARD_URL, SWITCHBOARD_TOKEN,
// SWITCHBOARD_AWAY, SWITCHBOARD_ASCII, SWITCHBOARD_AGENT_LOG); flags win.
//
// Product titles for the stats pane are read from GET /products on the same
// host as -url (ws becomes http, wss https) each time the client connects.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/switchboard/switchboard/agent"
)

func main() {
	env := func(k, def string) string {
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		return def
	}
	envBool := func(k string) bool { b, _ := strconv.ParseBool(env(k, "false")); return b }

	var o agent.Options
	flag.StringVar(&o.URL, "url", env("SWITCHBOARD_URL", ""), "node WebSocket URL, e.g. ws://127.0.0.1:8080/agent (SWITCHBOARD_URL)")
	// The token's default is not taken from the environment here, so that
	// -h never prints it; SWITCHBOARD_TOKEN applies after parsing.
	flag.StringVar(&o.Token, "token", "", "agent bearer token; make one with: switchboard token NAME (SWITCHBOARD_TOKEN)")
	flag.BoolVar(&o.Away, "away", envBool("SWITCHBOARD_AWAY"), "start away instead of available (SWITCHBOARD_AWAY)")
	flag.BoolVar(&o.ASCII, "ascii", envBool("SWITCHBOARD_ASCII") || !agent.UTF8Locale(os.Getenv), "ASCII marks instead of emoji; default when the locale is not UTF-8 (SWITCHBOARD_ASCII)")
	flag.IntVar(&o.Capacity, "capacity", 0, "conversations to take at once; 0 lets the node decide")
	flag.BoolVar(&o.Supervisor, "supervisor", envBool("SWITCHBOARD_SUPERVISOR"), "the supervisor's screen: the waiting line and every agent, assign and read conversations; -token is then the admin token (SWITCHBOARD_SUPERVISOR)")
	flag.StringVar(&o.LogPath, "log", env("SWITCHBOARD_AGENT_LOG", agent.DefaultLogPath()), "log file; logs never go to the terminal (SWITCHBOARD_AGENT_LOG)")
	flag.Parse()
	o.AltScreen = true
	if o.Token == "" {
		o.Token = os.Getenv("SWITCHBOARD_TOKEN")
	}
	if o.Supervisor && o.Token == "" {
		o.Token = os.Getenv("SWITCHBOARD_ADMIN_TOKEN")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := agent.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}
