package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run: what was sent, how fast the nodes
// answered and delivered, and whether anything was lost or sent twice.
// It is also sbload's -json output.
type Report struct {
	Targets         []string `json:"targets"`
	RunID           string   `json:"run_id"`
	Demo            bool     `json:"demo,omitempty"`
	Rate            float64  `json:"rate"`
	MaxRate         bool     `json:"max_rate,omitempty"`
	NavRate         float64  `json:"nav_rate,omitempty"`
	Customers       int      `json:"customers"`
	Agents          int      `json:"agents"`
	AgentsConnected int      `json:"agents_connected"`
	Capacity        int      `json:"capacity"`
	ConnectSeconds  float64  `json:"connect_s"`
	SendSeconds     float64  `json:"send_s"`                   // the send phase
	DrainSeconds    float64  `json:"drain_s"`                  // the longest wait allowed after it
	TwilioURL       string   `json:"twilio_api_url,omitempty"` // the fake SMS API the nodes must send to

	// EndOfShiftRelease: the accounting had not settled half way through
	// the drain, so every agent released its conversations to let waiting
	// ones be offered.
	EndOfShiftRelease bool `json:"end_of_shift_release,omitempty"`

	Inbound InboundReport `json:"inbound"`
	Replies ReplyReport   `json:"replies"`
	Nav     NavReport     `json:"nav"`

	Latency struct {
		Webhook  Summary `json:"webhook"`          // intended send → 200
		Delivery Summary `json:"webhook_to_agent"` // intended send → frame at the agent
		Reply    Summary `json:"reply_to_sms_api"` // response frame → CreateMessage at the fake API
	} `json:"latency_ms"`

	Errors       map[string]int64 `json:"errors"`
	LostMessages []LostMessage    `json:"lost_messages,omitempty"` // the first 20
	BadReplies   []LostReply      `json:"bad_replies,omitempty"`   // the first 20 lost or sent twice
	Memory       *MemoryReport    `json:"memory,omitempty"`
	CPU          []CPUUsage       `json:"cpu,omitempty"` // over the send phase: sbload, then CPUPIDs
	// CPUPerDelivered is the CPU time of the CPUPIDs processes over the
	// send phase, in µs per inbound message delivered to an agent in that
	// phase (Inbound.DeliveredInSend): the node CPU per delivered message
	// when -cpu-pid names the nodes. 0 without -cpu-pid or deliveries.
	CPUPerDelivered float64  `json:"cpu_us_per_delivered,omitempty"`
	Failures        []string `json:"failures"` // empty = nothing lost, nothing sent twice
}

// InboundReport accounts for the customers' messages.
type InboundReport struct {
	Sent      int64 `json:"sent"`  // distinct messages (first posts)
	Acked     int64 `json:"acked"` // answered 200
	Failed    int64 `json:"failed"`
	Delivered int64 `json:"delivered"` // distinct acked-or-not messages seen by an agent
	// DeliveredInSend counts the messages first delivered during the send
	// phase, the window over which CPU is measured.
	DeliveredInSend int64   `json:"delivered_in_send"`
	Lost            int64   `json:"lost"` // acked, never seen by an agent
	DeliveredTwice  int64   `json:"delivered_twice"`
	Redelivered     int64   `json:"redelivered_same_agent"`
	DuplicatesSent  int64   `json:"duplicates_sent"`
	DuplicatesAcked int64   `json:"duplicates_acked"`
	AckedPerSec     float64 `json:"acked_per_s"`
	DeliveredPerSec float64 `json:"delivered_per_s"`
}

// ReplyReport accounts for the agents' replies.
type ReplyReport struct {
	Sent      int64 `json:"sent"` // response frames written
	Acked     int64 `json:"acked"`
	Refused   int64 `json:"refused"`
	AtSMSAPI  int64 `json:"at_sms_api"` // distinct replies the fake API received
	Lost      int64 `json:"lost"`
	SentTwice int64 `json:"sent_twice"`
	Statuses  int64 `json:"status_frames"`
}

// NavReport counts navigation events.
type NavReport struct {
	Sent        int64 `json:"sent"`
	Accepted    int64 `json:"accepted"`
	Unsupported int64 `json:"unsupported"` // 404/405: the node has no POST /nav yet
	Failed      int64 `json:"failed"`
}

// MemoryReport is the resident memory of the node processes around the
// agents' connections.
type MemoryReport struct {
	PIDs               []int `json:"pids"`
	Connections        int   `json:"connections"`
	RSSBeforeKB        int64 `json:"rss_before_kb"`
	RSSAfterKB         int64 `json:"rss_after_kb"` // at the end of the idle period
	RSSPeakKB          int64 `json:"rss_peak_kb"`  // highest sample during the idle period
	BytesPerConnection int64 `json:"bytes_per_connection"`
}

// fill completes rep from the ledger.
func (r *Runner) fill(rep *Report, expectDelivery, expectAPI bool) {
	c := r.led.snapshot()
	send := r.sendEnd.Sub(r.start)
	rep.SendSeconds = round3(send.Seconds())
	lost, lostN, bad, lostReplies, twice := r.led.problems(r.start, expectDelivery, expectAPI, 20)
	rep.Inbound = InboundReport{
		Sent: c.sent, Acked: c.acked, Failed: c.failed, Delivered: c.delivered, Lost: lostN,
		DeliveredTwice: c.deliveredTwice, Redelivered: c.redelivered,
		DuplicatesSent: c.dupSent, DuplicatesAcked: c.dupAcked,
		AckedPerSec: perSec(c.acked, send),
	}
	if !c.lastDelivery.IsZero() {
		rep.Inbound.DeliveredPerSec = perSec(c.delivered, c.lastDelivery.Sub(r.start))
	}
	rep.Inbound.DeliveredInSend = r.led.deliveredBetween(r.start, r.sendEnd)
	rep.CPUPerDelivered = perDelivered(rep.CPU, rep.Inbound.DeliveredInSend)
	rep.Replies = ReplyReport{
		Sent: c.repliesSent, Acked: c.repliesAcked, Refused: c.repliesRefused, AtSMSAPI: c.repliesAPI,
		Lost: lostReplies, SentTwice: twice, Statuses: c.statuses,
	}
	rep.Nav = NavReport{Sent: c.navSent, Accepted: c.navAccepted, Unsupported: c.navUnsupported, Failed: c.navFailed}
	rep.Latency.Webhook = r.led.webhook.Summary()
	rep.Latency.Delivery = r.led.delivery.Summary()
	rep.Latency.Reply = r.led.replyLat.Summary()
	rep.Errors = r.led.errorCounts()
	rep.LostMessages = lost
	rep.BadReplies = bad
	rep.Failures = failures(rep, expectDelivery)
}

// deliveredBetween counts the inbound messages first delivered to an agent
// in [from, to].
func (l *ledger) deliveredBetween(from, to time.Time) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, m := range l.in {
		if m.firstAgent != "" && !m.deliveredAt.Before(from) && !m.deliveredAt.After(to) {
			n++
		}
	}
	return n
}

// failures says, in words, what was lost or sent twice.
func failures(rep *Report, expectDelivery bool) []string {
	out := []string{}
	if rep.Inbound.Sent > 0 && rep.Inbound.Acked == 0 {
		out = append(out, "no webhook was acknowledged: check -target, -auth-token (TWILIO_AUTH_TOKEN) and -public-url")
	}
	if rep.Inbound.Lost > 0 {
		var ids []string
		for _, m := range rep.LostMessages {
			s := fmt.Sprintf("%s (from %s, sent at %.3fs", m.MessageSid, m.Phone, m.SentAtSec)
			if m.Stored != nil {
				s += fmt.Sprintf(", stored: %v", *m.Stored)
			}
			ids = append(ids, s+")")
		}
		out = append(out, fmt.Sprintf("LOST: %d acknowledged inbound messages never reached an agent: %s%s", rep.Inbound.Lost, strings.Join(ids, ", "), rep.drainNote()))
	}
	if rep.Inbound.DeliveredTwice > 0 {
		out = append(out, fmt.Sprintf("DUPLICATE: %d inbound messages were delivered as new to two agents", rep.Inbound.DeliveredTwice))
	}
	if rep.Replies.Lost > 0 {
		hint := rep.drainNote()
		if rep.Replies.AtSMSAPI == 0 && rep.TwilioURL != "" {
			hint = " (none arrived at all: do the nodes' TWILIO_API_URL point at sbload's fake, " + rep.TwilioURL + "?)"
		}
		out = append(out, fmt.Sprintf("LOST: %d acknowledged replies never reached the SMS API%s", rep.Replies.Lost, hint))
	}
	if rep.Replies.SentTwice > 0 {
		out = append(out, fmt.Sprintf("DUPLICATE: %d replies were sent to the SMS API more than once", rep.Replies.SentTwice))
	}
	return out
}

// drainNote says how long sbload waited: a message later than that counts
// as lost.
func (rep *Report) drainNote() string {
	if rep.DrainSeconds <= 0 {
		return ""
	}
	return fmt.Sprintf(" (waited %.0fs after the send phase; -drain longer tells late from lost)", rep.DrainSeconds)
}

// OK reports whether nothing was lost or sent twice.
func (rep *Report) OK() bool { return len(rep.Failures) == 0 }

// WriteJSON writes the report as one indented JSON object.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteText writes the summary table.
func (rep *Report) WriteText(w io.Writer) error {
	if rep.Demo {
		_, err := fmt.Fprintf(w, "demo over after %.0fs: %d texts (%d acknowledged), %d navigation events (%d accepted), %d replies from the simulated agent; errors: %s\n",
			rep.SendSeconds, rep.Inbound.Sent, rep.Inbound.Acked, rep.Nav.Sent, rep.Nav.Accepted, rep.Replies.Sent, errorList(rep.Errors))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := fmt.Sprintf("%.0f msg/s open loop", rep.Rate)
	if rep.MaxRate {
		mode = "max rate (closed loop)"
	}
	fmt.Fprintf(tw, "sbload run %s: %s against %s for %.1fs; %d/%d agents (capacity %d), %d customers\n\n",
		rep.RunID, mode, strings.Join(rep.Targets, ", "), rep.SendSeconds, rep.AgentsConnected, rep.Agents, rep.Capacity, rep.Customers)
	in := rep.Inbound
	fmt.Fprintf(tw, "inbound\tsent %d\tacked %d (%.0f/s)\tfailed %d\tdelivered %d (%.0f/s)\tlost %d\n",
		in.Sent, in.Acked, in.AckedPerSec, in.Failed, in.Delivered, in.DeliveredPerSec, in.Lost)
	fmt.Fprintf(tw, "duplicates\tposted %d\tacked %d\tdelivered to 2 agents %d\techoed to same agent %d\t\n",
		in.DuplicatesSent, in.DuplicatesAcked, in.DeliveredTwice, in.Redelivered)
	rp := rep.Replies
	fmt.Fprintf(tw, "replies\tsent %d\tacked %d\trefused %d\tat SMS API %d\tlost %d, sent twice %d\n",
		rp.Sent, rp.Acked, rp.Refused, rp.AtSMSAPI, rp.Lost, rp.SentTwice)
	if rep.Nav.Sent > 0 {
		fmt.Fprintf(tw, "navigation\tsent %d\taccepted %d\tunsupported %d\tfailed %d\t\n", rep.Nav.Sent, rep.Nav.Accepted, rep.Nav.Unsupported, rep.Nav.Failed)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "latency (ms)\tcount\tp50\tp90\tp99\tp99.9\tmax")
	for _, row := range []struct {
		name string
		s    Summary
	}{{"webhook → 200", rep.Latency.Webhook}, {"webhook → agent", rep.Latency.Delivery}, {"reply → SMS API", rep.Latency.Reply}} {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\n", row.name, row.s.Count, row.s.P50, row.s.P90, row.s.P99, row.s.P999, row.s.Max)
	}
	if m := rep.Memory; m != nil {
		fmt.Fprintf(tw, "\nmemory\tRSS %d → %d KiB (peak %d)\t%d connections\t%d bytes/connection\t\t\n", m.RSSBeforeKB, m.RSSAfterKB, m.RSSPeakKB, m.Connections, m.BytesPerConnection)
	}
	if len(rep.CPU) > 0 {
		var parts []string
		for _, c := range rep.CPU {
			p := fmt.Sprintf("%s %.0f %%", c.Command, c.Percent)
			if c.MicrosPerDelivered > 0 {
				p += fmt.Sprintf(" (%.1f µs/delivered)", c.MicrosPerDelivered)
			}
			parts = append(parts, p)
		}
		fmt.Fprintf(tw, "\nCPU (send phase, %% of one core)\t%s\n", strings.Join(parts, ", "))
		if rep.CPUPerDelivered > 0 {
			note := ""
			if in.DeliveredInSend < in.Acked*9/10 {
				// Conversations waited for a free agent, or delivery lagged:
				// the CPU of the others' work is charged to fewer messages.
				note = fmt.Sprintf("; only %d of %d acknowledged: deliveries lagged, so this overstates the cost per message", in.DeliveredInSend, in.Acked)
			}
			fmt.Fprintf(tw, "node CPU per delivered message\t%.1f µs (-cpu-pid processes, %d messages delivered in the send phase%s)\n", rep.CPUPerDelivered, in.DeliveredInSend, note)
		}
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintf(tw, "\nerrors\t%s\n", errorList(rep.Errors))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Failures) == 0 {
		_, err := fmt.Fprintln(w, "\nOK: nothing lost, nothing sent twice")
		return err
	}
	for _, f := range rep.Failures {
		if _, err := fmt.Fprintln(w, "\nFAIL: "+f); err != nil {
			return err
		}
	}
	return nil
}

// progress writes the live progress line until ctx ends.
func (r *Runner) progress(ctx context.Context) {
	if r.opts.Progress == nil {
		return
	}
	every := time.Second
	if !r.opts.ProgressTTY {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var last counts
	for {
		select {
		case <-ctx.Done():
			if r.opts.ProgressTTY {
				fmt.Fprint(r.opts.Progress, "\r\x1b[K")
			}
			return
		case <-t.C:
		}
		c := r.led.snapshot()
		web := r.led.webhook.TakeWindow()
		del := r.led.delivery.TakeWindow()
		var errs int64
		for _, v := range r.led.errorCounts() {
			errs += v
		}
		line := fmt.Sprintf("%5.0fs  sent %d (%.0f/s)  acked %d  delivered %d  p99 webhook %.1fms agent %.1fms  replies %d→%d  errors %d",
			r.opts.Now().Sub(r.start).Seconds(), c.sent, float64(c.sent-last.sent)/every.Seconds(), c.acked, c.delivered,
			web.P99, del.P99, c.repliesSent, c.repliesAPI, errs)
		last = c
		if r.opts.ProgressTTY {
			fmt.Fprint(r.opts.Progress, "\r\x1b[K"+line)
		} else {
			fmt.Fprintln(r.opts.Progress, line)
		}
	}
}

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// errorList formats error counts as "kind=n kind=n", sorted; "none" when
// empty.
func errorList(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
