// Command udpstats joins the switchboard metrics multicast group and shows
// every node live. See udpstats/monitor for flags and environment.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchboard/switchboard/udpstats/monitor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := monitor.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
