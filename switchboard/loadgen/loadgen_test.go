package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/switchboard"
	"github.com/switchboard/switchboard/switchboard/bus/bustest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

func TestMain(m *testing.M) {
	// goleveldb's mpoolDrain goroutine outlives DB.Close by one tick; it is
	// not ours and does stop.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

const (
	testSecret    = "load-secret"
	testAccount   = "AC0123456789abcdef0123456789abcdef"
	testAuthToken = "0123456789abcdef0123456789abcdef"
	testFrom      = "+15550000000"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startNode runs a real node in-process on a kernel-chosen loopback port,
// sending replies to the fake API on twilioLn. Its public URL is empty, so
// webhooks are checked against the Host they were sent to.
func startNode(t *testing.T, twilioLn net.Listener) string {
	t.Helper()
	o := switchboard.NewOptions()
	o.Addr = "127.0.0.1:0"
	o.DataDir = t.TempDir()
	o.Node = "load-test"
	o.Secret = testSecret
	o.StatsInterval = 0
	o.TwilioAccountSID, o.TwilioAuthToken, o.TwilioFrom = testAccount, testAuthToken, testFrom
	o.TwilioAPIURL = "http://" + twilioLn.Addr().String()
	n, err := switchboard.New(o, switchboard.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
	})
	return "http://" + n.Addr().String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// loadOptions is a short, low-rate run against target.
// run makes a Runner of o and runs it to the end.
func run(t *testing.T, o Options) *Report {
	t.Helper()
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func loadOptions(target string, twilioLn net.Listener) Options {
	o := NewOptions()
	o.Targets = []string{target}
	o.Secret = testSecret
	o.AccountSID, o.AuthToken, o.From = testAccount, testAuthToken, testFrom
	o.TwilioAddr, o.TwilioListener = "", twilioLn
	o.Rate = 40
	o.Duration = 1500 * time.Millisecond
	o.Drain = 8 * time.Second // only waited for when something is missing
	o.Customers = 20
	o.Agents = 3
	o.Capacity = 10
	o.Workers = 8
	o.DupShare = 0.2
	o.BurstShare = 0.1
	o.Think = 20 * time.Millisecond
	o.ReplyShare = 1
	o.ReleaseShare = 0.3
	o.Seed = 42
	o.RunID = "77"
	o.Logger = quiet
	return o
}

func TestRunAgainstNodeLosesNothing(t *testing.T) {
	t.Parallel()
	twilioLn := listen(t)
	node := startNode(t, twilioLn)
	opts := loadOptions(node, twilioLn)
	opts.CPUPIDs = []int{os.Getpid()} // the node runs in this process
	rep := run(t, opts)
	var out bytes.Buffer
	rep.WriteText(&out)
	if !rep.OK() {
		t.Fatalf("failures: %v\n%s", rep.Failures, out.String())
	}
	if len(rep.CPU) != 2 || rep.CPU[0].PID != 0 || rep.CPU[0].Command != "sbload" || rep.CPU[1].PID != os.Getpid() ||
		rep.CPU[1].Command == "" || rep.CPU[0].Percent <= 0 || rep.CPU[1].Percent != rep.CPU[0].Percent {
		t.Errorf("CPU = %+v, want sbload and this process (the same process: the same, non-zero share)", rep.CPU)
	}
	if !strings.Contains(out.String(), "CPU (send phase") || !strings.Contains(out.String(), "node CPU per delivered message") {
		t.Errorf("summary has no CPU lines:\n%s", out.String())
	}
	if rep.Inbound.DeliveredInSend == 0 || rep.CPUPerDelivered <= 0 || rep.CPU[1].MicrosPerDelivered != rep.CPUPerDelivered {
		t.Errorf("CPU per delivered message %v µs (this process %+v) over %d delivered in the send phase", rep.CPUPerDelivered, rep.CPU[1], rep.Inbound.DeliveredInSend)
	}
	in := rep.Inbound
	if in.Sent < 50 || in.Acked != in.Sent || in.Delivered != in.Sent || in.Lost != 0 {
		t.Errorf("inbound = %+v, want every one of ~60 acked and delivered\n%s", in, out.String())
	}
	if in.DuplicatesSent == 0 || in.DuplicatesAcked != in.DuplicatesSent || in.DeliveredTwice != 0 {
		t.Errorf("duplicates: %+v", in)
	}
	rp := rep.Replies
	if rp.Sent == 0 || rp.Acked != rp.Sent || rp.AtSMSAPI != rp.Acked || rp.SentTwice != 0 || rp.Lost != 0 {
		t.Errorf("replies = %+v\n%s", rp, out.String())
	}
	if rep.Latency.Webhook.Count != in.Acked || rep.Latency.Delivery.Count != in.Delivered || rep.Latency.Reply.Count != rp.AtSMSAPI {
		t.Errorf("latency counts %+v do not match the accounting", rep.Latency)
	}
	if !strings.Contains(out.String(), "OK: nothing lost") {
		t.Errorf("summary does not say OK:\n%s", out.String())
	}
}

// dropper is a test double of a node's webhook endpoint: it proxies
// everything to the real node, except that it answers the webhook with
// MessageSid drop 200 without passing it on, as a node that loses an
// acknowledged message would.
func dropper(t *testing.T, node string, drop func(sid string) bool) (string, *atomic.Int64) {
	t.Helper()
	u, _ := url.Parse(node)
	proxy := httputil.NewSingleHostReverseProxy(u)
	tr := &http.Transport{}
	proxy.Transport = tr
	t.Cleanup(tr.CloseIdleConnections)
	var dropped atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/sms/twilio" {
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			if drop(form.Get("MessageSid")) {
				dropped.Add(1)
				w.Header().Set("Content-Type", "text/xml")
				io.WriteString(w, "<Response></Response>")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &dropped
}

func TestDroppedMessageIsReportedAsLost(t *testing.T) {
	t.Parallel()
	twilioLn := listen(t)
	node := startNode(t, twilioLn)
	lostSid := messageSid("77", 5)
	front, dropped := dropper(t, node, func(sid string) bool { return sid == lostSid })
	o := loadOptions(front, twilioLn)
	o.DupShare = 0 // a duplicate of the dropped message would deliver it
	o.Drain = 1500 * time.Millisecond
	rep := run(t, o)
	if dropped.Load() != 1 {
		t.Fatalf("the double dropped %d webhooks, want 1", dropped.Load())
	}
	if rep.OK() || rep.Inbound.Lost != 1 {
		t.Fatalf("report OK=%v lost=%d, want exactly the dropped message lost; failures %v", rep.OK(), rep.Inbound.Lost, rep.Failures)
	}
	if len(rep.LostMessages) != 1 || rep.LostMessages[0].MessageSid != lostSid || rep.LostMessages[0].Seq != 5 {
		t.Errorf("lost messages = %+v, want %s", rep.LostMessages, lostSid)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	if !strings.Contains(out.String(), "FAIL: LOST: 1 acknowledged inbound messages never reached an agent: "+lostSid) {
		t.Errorf("summary does not name the lost message:\n%s", out.String())
	}
}

func TestHTTPBaselineAgainstTrivialServer(t *testing.T) {
	t.Parallel()
	u, stop, err := TrivialServer()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	o := NewOptions()
	o.Targets = []string{u}
	o.Agents, o.TwilioAddr = 0, ""
	o.Rate, o.Duration, o.Workers = 200, 500*time.Millisecond, 4
	o.Logger = quiet
	rep := run(t, o)
	if !rep.OK() || rep.Inbound.Acked != rep.Inbound.Sent || rep.Inbound.Sent < 90 {
		t.Errorf("baseline run: %+v failures %v", rep.Inbound, rep.Failures)
	}
	if rep.Latency.Delivery.Count != 0 || rep.Inbound.Lost != 0 {
		t.Errorf("no agents: nothing should be delivered or counted lost: %+v", rep.Inbound)
	}
}

// TestForwarderBaseline drives the forwarding baseline (HTTP → the
// cluster log's broker path) on the real broker: every acknowledged
// webhook reaches both consumers once RabbitMQ confirmed it, nothing is
// returned unroutable, and Close removes the exchange and the stream.
func TestForwarderBaseline(t *testing.T) {
	url := bustest.AMQPURL(t)
	queue := fmt.Sprintf("sbtest.forward.%d", time.Now().UnixNano())
	fw, err := StartForwarder(url, queue, 2)
	if err != nil {
		t.Fatal(err)
	}
	o := NewOptions()
	o.Targets = []string{fw.URL}
	o.Agents, o.TwilioAddr = 0, ""
	o.Rate, o.Duration, o.Workers = 200, 500*time.Millisecond, 4
	o.Logger = quiet
	rep := run(t, o)
	if !rep.OK() || rep.Inbound.Acked != rep.Inbound.Sent || rep.Inbound.Sent < 90 {
		t.Errorf("forwarder run: %+v failures %v", rep.Inbound, rep.Failures)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Retried posts are published again, so the consumers may read more
	// than were acknowledged, never fewer.
	if got := fw.WaitConsumed(ctx, rep.Inbound.Acked); got < rep.Inbound.Acked {
		t.Errorf("the slowest consumer read %d of %d acknowledged webhooks", got, rep.Inbound.Acked)
	}
	if _, returned := fw.Consumed(); returned != 0 {
		t.Errorf("%d publishes returned unroutable", returned)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, url, queue, queue+".x")
}

func TestLevelDBBaseline(t *testing.T) {
	b, err := BaselineLevelDB(context.Background(), t.TempDir(), 2, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if b.Ops == 0 || b.PerSec <= 0 || b.Latency.Count != b.Ops {
		t.Errorf("baseline = %+v", b)
	}
}

func TestValidate(t *testing.T) {
	ok := func() Options {
		o := NewOptions()
		o.Targets = []string{"http://127.0.0.1:8080"}
		o.Secret = "s"
		return o
	}
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string // substring of the error; "" = valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"no target", func(o *Options) { o.Targets = nil }, "-target"},
		{"bad target", func(o *Options) { o.Targets = []string{"127.0.0.1:8080"} }, "-target"},
		{"agents need a secret", func(o *Options) { o.Secret = "" }, "-secret"},
		{"no agents, no secret", func(o *Options) { o.Secret, o.Agents = "", 0 }, ""},
		{"share above 1", func(o *Options) { o.DupShare = 1.5 }, "-dup"},
		{"capacity", func(o *Options) { o.Capacity = 0 }, "-capacity"},
		{"run id letters", func(o *Options) { o.RunID = "ab" }, "-run-id"},
		{"run id too long", func(o *Options) { o.RunID = "1234567" }, "-run-id"},
		{"bad from", func(o *Options) { o.From = "555" }, "-from"},
		{"negative rate", func(o *Options) { o.Rate = -1 }, "-rate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := ok()
			tc.mutate(&o)
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		line    string
		command string
		ticks   int64
		ok      bool
	}{
		{"4242 (switchboard) S 1 4242 4242 0 -1 4194560 1230 0 0 0 150 25 0 0 20 0 9 0 123 456 789\n", "switchboard", 175, true},
		{"7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 2 3", "a (b) c", 7, true},
		{"7 (x) R 1 7 7 0 -1 0 0 0 0 0 1152921504606846976 1152921504606846976", "x", 1 << 61, true}, // years of CPU on many cores
		{"7 (x) R 1 7", "", 0, false},                       // too few fields
		{"7 x R 1 7 7 0 -1 0 0 0 0 0 3 4", "", 0, false},    // no command name
		{"7 (x) R 1 7 7 0 -1 0 0 0 0 0 3 -4", "", 0, false}, // negative time
		{"7 (x) R 1 7 7 0 -1 0 0 0 0 0 3 zz", "", 0, false},
		{"7 (x) R 1 7 7 0 -1 0 0 0 0 0 9223372036854775807 9223372036854775807", "", 0, false}, // would overflow
	} {
		got, err := parseProcStat([]byte(tc.line))
		if (err == nil) != tc.ok || got.command != tc.command || got.ticks != tc.ticks {
			t.Errorf("parseProcStat(%q) = %+v, %v; want %q %d ok=%v", tc.line, got, err, tc.command, tc.ticks, tc.ok)
		}
	}
}

// TestCPUTime: this process's CPU time grows while it computes.
func TestCPUTime(t *testing.T) {
	start, err := CPUTime(0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
		d, err := CPUTime(0)
		if err != nil {
			t.Fatal(err)
		}
		if d > start {
			return
		}
	}
	t.Fatalf("CPU time stayed at %v while computing for 5 s (%d)", start, x)
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("4242 (switchboard) S 1 4242 4242 0 -1 4194560 1230 0 0 0 150 25 0 0 20 0 9 0 123 456 789"))
	f.Add([]byte("7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4"))
	f.Add([]byte(")("))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseProcStat(data)
		if err == nil && got.ticks < 0 {
			t.Fatalf("negative CPU time %d from %q", got.ticks, data)
		}
	})
}

func TestFindMarker(t *testing.T) {
	tests := []struct {
		text string
		want int64
		ok   bool
	}{
		{"Hello #m77.42", 42, true},
		{"#m77.1 first", 1, true},
		{"order #1234 then #m77.9", 9, true},
		{"other run #m78.9", 0, false},
		{"prefix only #m77.", 0, false},
		{"#m77.x then #m77.3", 3, true},
		{"reply marker #r77.5", 0, false},
		{"#m771.5 is run 771", 0, false},
		{"", 0, false},
		{"#m77.99999999999999999999", 0, false}, // longer than any sequence number
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			got, ok := findMarker(tc.text, inMarker, "77")
			if got != tc.want || ok != tc.ok {
				t.Errorf("findMarker(%q) = %d, %v; want %d, %v", tc.text, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzFindMarker: texts come back from the node and the SMS API; no text
// may crash the parser, and a marker that is found round-trips.
func FuzzFindMarker(f *testing.F) {
	f.Add("hi #m77.5", int64(5))
	f.Add("#m77.", int64(0))
	f.Add("\xff#m77.12\x00", int64(12))
	f.Fuzz(func(t *testing.T, text string, seq int64) {
		findMarker(text, inMarker, "77")
		if seq < 0 {
			seq = -seq
		}
		if seq < 0 {
			return
		}
		// Without any '#' the text holds no marker, so the appended one is
		// the first.
		got, ok := findMarker(strings.ReplaceAll(text, "#", "")+" "+marker(inMarker, "77", seq), inMarker, "77")
		if !ok || got != seq {
			t.Fatalf("marker %d not found back: %d %v", seq, got, ok)
		}
	})
}

func TestSummarize(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var s []time.Duration
	for i := 1; i <= 1000; i++ {
		s = append(s, ms(i))
	}
	tests := []struct {
		name    string
		samples []time.Duration
		want    Summary
	}{
		{"empty", nil, Summary{}},
		{"one", []time.Duration{ms(3)}, Summary{Count: 1, Mean: 3, P50: 3, P90: 3, P99: 3, P999: 3, Max: 3}},
		{"1..1000 ms", s, Summary{Count: 1000, Mean: 500.5, P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Recorder
			for _, d := range tc.samples {
				r.Record(d)
			}
			if got := r.Summary(); got != tc.want {
				t.Errorf("Summary = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLedgerDeliveryRules(t *testing.T) {
	l := newLedger()
	t0 := time.Unix(1000, 0)
	l.sent(1, "SM1", "+15551", t0)
	l.answered(1, true, t0.Add(time.Millisecond))
	steps := []struct {
		agent  string
		update bool
		first  bool
	}{
		{"a", false, true},  // assigned with history: first delivery
		{"a", true, false},  // the racing update to the same agent: an echo
		{"b", false, false}, // history after a reassignment: fine
		{"b", true, false},  // an update to a second agent: delivered twice
	}
	for i, s := range steps {
		if got := l.seen(1, s.agent, s.update, t0.Add(2*time.Millisecond)); got != s.first {
			t.Errorf("step %d: first = %v, want %v", i, got, s.first)
		}
	}
	c := l.snapshot()
	if c.delivered != 1 || c.redelivered != 1 || c.deliveredTwice != 1 {
		t.Errorf("counts = %+v", c)
	}
	if l.seen(99, "a", true, t0) || l.snapshot().unknownSeen != 1 {
		t.Error("an unknown marker must be counted, not delivered")
	}
}

// syncBuffer is a bytes.Buffer safe for the demo's concurrent writers.
// syncBuffer collects a child process's output.
type syncBuffer = sbt.SyncBuffer

func TestDemoTellsAStory(t *testing.T) {
	t.Parallel()
	twilioLn := listen(t)
	node := startNode(t, twilioLn)
	o := DemoOptions()
	o.Targets = []string{node}
	o.Secret = testSecret
	o.AccountSID, o.AuthToken, o.From = testAccount, testAuthToken, testFrom
	o.TwilioAddr, o.TwilioListener = "", twilioLn
	o.Customers = 1
	o.DemoAgent = true
	o.Think = 20 * time.Millisecond
	o.Duration = 5 * time.Second // with seed 7 Maya texts about 2 s in
	o.Seed, o.RunID, o.Logger = 7, "31", quiet
	var out syncBuffer
	o.Progress = &out
	rep := run(t, o)
	story := out.String()
	for _, want := range []string{"demo: 1 customers texting", "Maya", " texts: ", "SMS to Maya: "} {
		if !strings.Contains(story, want) {
			t.Errorf("demo output lacks %q:\n%s", want, story)
		}
	}
	if !rep.Demo || rep.Inbound.Acked == 0 || rep.Nav.Sent == 0 || rep.Replies.Sent == 0 || !rep.OK() {
		t.Errorf("demo report: %+v", rep)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.HasPrefix(text.String(), "demo over after") {
		t.Errorf("demo summary = %q", text.String())
	}
}

// assertGone fails the test if the broker still has the queue or the
// exchange (a passive declare of a missing one closes the channel with 404).
func assertGone(t *testing.T, url, queue, exchange string) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, declare := range []func(*amqp.Channel) error{
		func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
			return err
		},
		func(ch *amqp.Channel) error {
			return ch.ExchangeDeclarePassive(exchange, "topic", true, false, false, false, nil)
		},
	} {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		var amqpErr *amqp.Error
		if err := declare(ch); !errors.As(err, &amqpErr) || amqpErr.Code != amqp.NotFound {
			t.Errorf("after the baseline: passive declare = %v, want 404 NOT_FOUND (left on the broker)", err)
			ch.Close()
		}
	}
}

// TestAMQPBaselines runs the raw amqp091-go baselines briefly on the real
// broker, through a classic queue, through a stream and through a
// cluster-shaped log (topic exchange, stream, three consumers): every
// published message reaches every consumer, nothing is returned, and the
// queue and exchange are deleted afterwards.
func TestAMQPBaselines(t *testing.T) {
	url := bustest.AMQPURL(t)
	for _, tc := range []struct {
		name      string
		opts      AMQPBaselineOptions
		consumers int64
		settings  string
	}{
		{"queue", AMQPBaselineOptions{}, 1, "durable queue"},
		{"stream", AMQPBaselineOptions{Stream: true}, 1, ", stream,"},
		{"cluster", AMQPBaselineOptions{Cluster: true, Consumers: 3}, 3, "mandatory → stream → 3 consumers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.URL, o.Duration = url, 300*time.Millisecond
			o.Queue = fmt.Sprintf("sbtest.baseline.%s.%d", tc.name, time.Now().UnixNano())
			b, err := BaselineAMQP(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if b.Ops == 0 || b.PerSec <= 0 || b.Latency.Count != tc.consumers*b.Ops {
				t.Fatalf("baseline = %+v, want %d latency samples per message", b, tc.consumers)
			}
			if !strings.Contains(b.Settings, tc.settings) || !strings.Contains(b.Settings, "0 nacked, 0 returned") {
				t.Fatalf("settings %q do not say %q and 0 nacked, 0 returned", b.Settings, tc.settings)
			}
			assertGone(t, url, o.Queue, o.Queue+".x")
		})
	}
}

// TestWaitingBacklogIsNotLost: when more conversations wait than the
// agents can hold (here far more than twice their capacity), the node
// keeps them waiting, which is not a loss. The end-of-shift release must
// keep releasing what it is then offered, until the queue is empty; a
// single release used to leave most of the backlog waiting and report it
// as LOST with exit status 1.
func TestWaitingBacklogIsNotLost(t *testing.T) {
	t.Parallel()
	twilioLn := listen(t)
	node := startNode(t, twilioLn)
	o := loadOptions(node, twilioLn)
	o.Customers = 200
	o.Agents = 1
	o.Capacity = 3
	o.ReplyShare = 0 // no replies, so no release before the end of shift
	o.ReleaseShare = 0
	o.BurstShare = 0
	o.DupShare = 0
	o.Drain = 6 * time.Second
	rep := run(t, o)
	if !rep.EndOfShiftRelease {
		t.Fatalf("the run settled without the end-of-shift release; the test needs a backlog")
	}
	if !rep.OK() || rep.Inbound.Lost != 0 || rep.Inbound.Delivered != rep.Inbound.Acked {
		t.Fatalf("inbound %+v; failures %v", rep.Inbound, rep.Failures)
	}
}
