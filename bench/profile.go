//go:build ignore

// Command profile runs one switchboard node in-process (settings from the
// environment, like the binary) and writes a CPU profile and a heap
// profile of it, so that a bottleneck found with sbload can be shown in
// numbers. Drive it with sbload from another shell:
//
//	go run bench/profile.go -cpuprofile /tmp/node.cpu -for 12s &   # or until SIGTERM
//	sbload -target http://127.0.0.1:18590 -rate 1000 -duration 8s ...
//	go tool pprof -top /tmp/node.cpu
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/switchboard"
)

func main() {
	cpu := flag.String("cpuprofile", "node.cpu", "CPU profile output")
	heap := flag.String("memprofile", "", "heap profile output, written at the end")
	d := flag.Duration("for", 12*time.Second, "how long to run the node")
	block := flag.Bool("block", false, "also write a mutex and block profile (node.cpu.block, node.cpu.mutex)")
	flag.Parse()
	opts := switchboard.NewOptions()
	if err := switchboard.LoadEnv(&opts, os.Getenv); err != nil {
		fail(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := switchboard.New(opts, switchboard.Config{Logger: log})
	if err != nil {
		fail(err)
	}
	if *block {
		runtime.SetBlockProfileRate(10000)
		runtime.SetMutexProfileFraction(10)
	}
	f, err := os.Create(*cpu)
	if err != nil {
		fail(err)
	}
	if err := n.Start(); err != nil {
		fail(err)
	}
	fmt.Fprintln(os.Stderr, "profiling node on", n.Addr(), "for", *d)
	pprof.StartCPUProfile(f)
	// Stop after -for, or earlier on SIGINT/SIGTERM (a script that kills
	// its nodes when the load is done still gets the profile).
	stop, cancelStop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	select {
	case <-time.After(*d):
	case <-stop.Done():
	}
	cancelStop()
	pprof.StopCPUProfile()
	f.Close()
	if *block {
		for _, p := range []string{"block", "mutex"} {
			if w, err := os.Create(*cpu + "." + p); err == nil {
				pprof.Lookup(p).WriteTo(w, 0)
				w.Close()
			}
		}
	}
	if *heap != "" {
		if w, err := os.Create(*heap); err == nil {
			runtime.GC()
			pprof.WriteHeapProfile(w)
			w.Close()
		}
		// What the heap profile does not show: stacks, and heap the
		// runtime holds but nothing uses.
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(os.Stderr, "goroutines %d; MiB: heap in use %.1f (live objects %.1f), heap idle %.1f (released %.1f), stacks %.1f, other runtime %.1f, total from the OS %.1f\n",
			runtime.NumGoroutine(), mib(ms.HeapInuse), mib(ms.HeapAlloc), mib(ms.HeapIdle), mib(ms.HeapReleased), mib(ms.StackSys),
			mib(ms.MSpanSys+ms.MCacheSys+ms.BuckHashSys+ms.GCSys+ms.OtherSys), mib(ms.Sys))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		fail(err)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "profile:", err)
	os.Exit(2)
}
