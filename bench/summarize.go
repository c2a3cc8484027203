//go:build ignore

// Command summarize turns the JSON reports of one bench/run.sh run into the
// markdown tables of BENCHMARKS.md: go run bench/summarize.go DIR.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/switchboard/loadgen"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run bench/summarize.go DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	if m, err := os.ReadFile(filepath.Join(dir, "machine.txt")); err == nil {
		fmt.Printf("Machine and run (`%s`):\n\n```\n%s```\n\n", dir, m)
	}

	base := map[string]*loadgen.Baseline{}
	for _, name := range []string{"baseline-leveldb-1", "baseline-leveldb-16", "baseline-amqp", "baseline-amqp-stream", "baseline-amqp-cluster"} {
		var b loadgen.Baseline
		if readJSON(filepath.Join(dir, name+".json"), &b) {
			base[name] = &b
		}
	}
	reports := map[string]map[string]*loadgen.Report{} // group → rate → report
	files, _ := filepath.Glob(filepath.Join(dir, "*__*.json"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		group, rate, _ := strings.Cut(name, "__")
		var r loadgen.Report
		if !readJSON(f, &r) {
			continue
		}
		if reports[group] == nil {
			reports[group] = map[string]*loadgen.Report{}
		}
		reports[group][rate] = &r
	}
	httpMax := 0.0
	if r := reports["baseline-http"]["max"]; r != nil {
		httpMax = r.Inbound.AckedPerSec
	}
	amqpRate := 0.0
	if b := base["baseline-amqp"]; b != nil {
		amqpRate = b.PerSec
	}

	fmt.Println("### Baselines (same run)")
	fmt.Println()
	fmt.Println("| baseline | rate | p50 ms | p99 ms | settings |")
	fmt.Println("| --- | ---: | ---: | ---: | --- |")
	if r := reports["baseline-http"]["max"]; r != nil {
		fmt.Printf("| raw loopback HTTP, trivial Go handler, closed loop (64 workers) | %.0f req/s | %.2f | %.2f | same generator, signed forms, in-process server |\n",
			r.Inbound.AckedPerSec, r.Latency.Webhook.P50, r.Latency.Webhook.P99)
	}
	for _, name := range []string{"baseline-amqp", "baseline-amqp-stream", "baseline-amqp-cluster", "baseline-leveldb-1", "baseline-leveldb-16"} {
		if b := base[name]; b != nil {
			fmt.Printf("| %s | %.0f/s | %.3f | %.3f | %s |\n", b.Name, b.PerSec, b.Latency.P50, b.Latency.P99, b.Settings)
		}
	}
	fmt.Println()
	// Every webhook → agent message costs at least one HTTP request and one
	// trip through the cluster's broker path, on the same cores: the
	// harmonic sum of those two baselines bounds any design before it
	// stores, routes or delivers anything.
	if c := base["baseline-amqp-cluster"]; c != nil && httpMax > 0 && c.PerSec > 0 && amqpRate > 0 {
		floor := 1 / (1/httpMax + 1/c.PerSec)
		fmt.Printf("HTTP request plus the cluster-shaped broker path, one after the other on these cores (1 / (1/%.0f + 1/%.0f)): **%.0f/s = %.0f%% of raw amqp091-go**, before any node stores, routes or delivers anything.\n\n",
			httpMax, c.PerSec, floor, 100*floor/amqpRate)
	}
	if r := reports["baseline-http-amqp"]["max"]; r != nil && amqpRate > 0 {
		fmt.Printf("Measured, a forwarder that does only that (HTTP handler publishing each webhook along the cluster-shaped path, answering once confirmed, closed loop): **%.0f/s = %.0f%% of raw amqp091-go**.\n\n",
			r.Inbound.AckedPerSec, 100*r.Inbound.AckedPerSec/amqpRate)
	}

	groups := make([]string, 0, len(reports))
	for g := range reports {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		fmt.Printf("### %s\n\n", title(g))
		fmt.Println("| offered msg/s | acked/s | delivered/s | webhook p50 / p99 ms | webhook→agent p50 / p90 / p99 / p99.9 / max ms | reply→SMS API p99 ms | not delivered / replies not sent at drain end | sent twice | errors | vs HTTP ceiling | vs AMQP | CPU % of a core: node(s) / RabbitMQ / sbload |")
		fmt.Println("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |")
		rates := make([]string, 0, len(reports[g]))
		for rt := range reports[g] {
			rates = append(rates, rt)
		}
		sort.Slice(rates, func(i, j int) bool { return rateNum(rates[i]) < rateNum(rates[j]) })
		saturation := ""
		for _, rt := range rates {
			r := reports[g][rt]
			d, w := r.Latency.Delivery, r.Latency.Webhook
			lat := func(s loadgen.Summary) string {
				if s.Count == 0 {
					return "–"
				}
				return fmt.Sprintf("%.1f / %.1f / %.1f / %.1f / %.1f", s.P50, s.P90, s.P99, s.P999, s.Max)
			}
			thr := r.Inbound.DeliveredPerSec
			if strings.HasPrefix(g, "baseline") {
				thr = r.Inbound.AckedPerSec
			}
			ratio := func(base float64) string {
				// Only a closed-loop (max) run measures a ceiling to compare.
				if base <= 0 || rt != "max" {
					return "–"
				}
				return fmt.Sprintf("%.0f%%", 100*thr/base)
			}
			fmt.Printf("| %s | %.0f | %.0f | %.1f / %.1f | %s | %.1f | %d / %d | %d | %s | %s | %s | %s |\n",
				rt, r.Inbound.AckedPerSec, r.Inbound.DeliveredPerSec, w.P50, w.P99, lat(d), r.Latency.Reply.P99,
				r.Inbound.Lost, r.Replies.Lost, r.Inbound.DeliveredTwice+r.Replies.SentTwice, errs(r.Errors), ratio(httpMax), amqpRatio(g, ratio, amqpRate), cpuCell(r.CPU))
			p99 := d.P99
			if d.Count == 0 {
				p99 = w.P99
			}
			if saturation == "" && rt != "max" && (p99 > 50 || r.Inbound.AckedPerSec < 0.95*rateNum(rt)) {
				saturation = rt
			}
		}
		if saturation != "" {
			fmt.Printf("\nSaturation: p99 first above 50 ms (or the node fell behind the offered rate) at %s msg/s.\n", saturation)
		} else {
			fmt.Println("\nSaturation: not reached at the rates tried.")
		}
		fmt.Println()
	}
	if r := readReport(filepath.Join(dir, "idle.json")); r != nil && r.Memory != nil {
		m := r.Memory
		fmt.Println("### Idle agent connections")
		fmt.Println()
		fmt.Printf("%d agents connected in %.1fs; node RSS %.1f MiB before → %.1f MiB after the idle period (peak %.1f MiB): %d bytes per connection (%.1f MiB for 10,000).\n\n",
			m.Connections, r.ConnectSeconds, float64(m.RSSBeforeKB)/1024, float64(m.RSSAfterKB)/1024, float64(m.RSSPeakKB)/1024, m.BytesPerConnection,
			float64(m.BytesPerConnection)*10000/(1<<20))
	}
}

// cpuCell shows the CPU use of the send phase: each node (joined by +),
// the broker, sbload.
func cpuCell(usage []loadgen.CPUUsage) string {
	if len(usage) == 0 {
		return "–"
	}
	var nodes []string
	broker, self := "–", "–"
	for _, u := range usage {
		v := fmt.Sprintf("%.0f", u.Percent)
		switch {
		case u.PID == 0:
			self = v
		case strings.HasPrefix(u.Command, "beam"):
			broker = v
		default:
			nodes = append(nodes, v)
		}
	}
	return strings.Join(nodes, "+") + " / " + broker + " / " + self
}

// amqpRatio compares only runs that go through RabbitMQ with the raw AMQP
// baseline.
func amqpRatio(group string, ratio func(float64) string, amqpRate float64) string {
	if !strings.HasPrefix(group, "rabbit") && group != "baseline-http-amqp" {
		return "–"
	}
	return ratio(amqpRate)
}

func title(g string) string {
	switch {
	case g == "embedded":
		return "One node, embedded bus"
	case strings.HasPrefix(g, "rabbitin"):
		return strings.TrimPrefix(g, "rabbitin") + " node(s), RabbitMQ, webhook → agent only (agents do not reply)"
	case strings.HasPrefix(g, "rabbit"):
		return strings.TrimPrefix(g, "rabbit") + " node(s), RabbitMQ, full traffic (agents answer half of the messages)"
	case g == "baseline-http":
		return "Raw loopback HTTP baseline (trivial handler, no agents)"
	case g == "baseline-http-amqp":
		return "Forwarding baseline: HTTP handler → cluster log's broker path (publish, confirm, 2 consumers), no node work"
	}
	return g
}

func rateNum(s string) float64 {
	if s == "max" {
		return 1e12
	}
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func errs(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func readJSON(path string, v any) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	return json.Unmarshal(data, v) == nil
}

func readReport(path string) *loadgen.Report {
	var r loadgen.Report
	if !readJSON(path, &r) {
		return nil
	}
	return &r
}
