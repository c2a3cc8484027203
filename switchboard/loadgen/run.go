package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/fakeapi"
)

// Runner runs one load test (or one demo). See the package comment for
// its concurrency contract.
type Runner struct {
	opts   Options
	log    *slog.Logger
	led    *ledger
	client *http.Client

	fake    *fakeapi.Server
	fakeSrv *http.Server
	fakeLn  net.Listener
	fakeHit func(to, body string) // demo: show replies as they are sent
	fakeWG  sync.WaitGroup        // the fake API's serving goroutine

	seq      atomic.Int64 // inbound messages
	replySeq atomic.Int64
	wg       sync.WaitGroup // timers and other helpers started with goTimer
	start    time.Time
	sendEnd  time.Time
	agentsN  atomic.Int64
	agents   []*simAgent // set by connectAgents before traffic starts
	used     atomic.Bool
}

// New validates opts and builds a Runner. Nothing is started yet.
func New(opts Options) (*Runner, error) {
	opts.Targets = append([]string(nil), opts.Targets...)
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	tr := &http.Transport{
		Proxy:               nil, // loopback only: never through a proxy
		MaxIdleConns:        opts.Workers * 2,
		MaxIdleConnsPerHost: opts.Workers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second}).DialContext,
	}
	led := newLedger()
	if opts.Progress != nil {
		led.webhook.Windowed, led.delivery.Windowed = true, true
	}
	return &Runner{
		opts:   opts,
		log:    opts.Logger.With("component", "sbload"),
		led:    led,
		client: &http.Client{Timeout: opts.Timeout, Transport: tr},
	}, nil
}

// Options returns the options in force (defaults filled in).
func (r *Runner) Options() Options { return r.opts }

// FakeTwilioURL returns the base URL of the fake SMS API once Run started
// it ("" when it does not run).
func (r *Runner) FakeTwilioURL() string {
	if r.fakeLn == nil {
		return ""
	}
	return "http://" + r.fakeLn.Addr().String()
}

// goTimer runs f after d unless ctx ends first. Run waits for it.
func (r *Runner) goTimer(ctx context.Context, d time.Duration, f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			f()
		case <-ctx.Done():
		}
	}()
}

// Run generates the traffic, waits for the accounting to settle (at most
// Drain after the send phase) and returns the report. Cancelling ctx ends
// the send phase early; the drain and the report still happen. It returns
// an error only when the run could not start (fake API address taken, no
// agent could connect); lost messages are in Report.Failures.
func (r *Runner) Run(ctx context.Context) (*Report, error) {
	if !r.used.CompareAndSwap(false, true) {
		return nil, errors.New("loadgen: a Runner runs once")
	}
	defer r.client.CloseIdleConnections()
	if err := r.startFake(); err != nil {
		return nil, err
	}
	defer r.stopFake()
	if r.opts.Demo {
		return r.runDemo(ctx)
	}

	rep := &Report{Targets: r.opts.Targets, RunID: r.opts.RunID, Rate: r.opts.Rate, MaxRate: r.opts.MaxRate, DrainSeconds: r.opts.Drain.Seconds(),
		Agents: r.opts.Agents, Capacity: r.opts.Capacity, Customers: r.opts.Customers, NavRate: r.opts.NavRate}
	var mem *MemoryReport
	if len(r.opts.PIDs) > 0 {
		mem = &MemoryReport{PIDs: r.opts.PIDs, RSSBeforeKB: rssKB(r.opts.PIDs)}
	}

	agentCtx, stopAgents := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAgents()
	var agentWG sync.WaitGroup
	connStart := time.Now()
	n, err := r.connectAgents(ctx, agentCtx, &agentWG)
	if err != nil {
		stopAgents()
		agentWG.Wait()
		r.wg.Wait()
		return nil, err
	}
	rep.AgentsConnected = n
	rep.ConnectSeconds = round3(time.Since(connStart).Seconds())

	if mem != nil {
		// Let the node settle (presence events, GC) before sampling.
		// Sample through the idle period: a node still working through the
		// connections shows it as a peak above the final figure.
		idleEnd := time.Now().Add(r.opts.Idle)
		for time.Now().Before(idleEnd) && ctx.Err() == nil {
			mem.RSSPeakKB = max(mem.RSSPeakKB, rssKB(r.opts.PIDs))
			time.Sleep(min(500*time.Millisecond, time.Until(idleEnd)))
		}
		mem.RSSAfterKB = rssKB(r.opts.PIDs)
		mem.RSSPeakKB = max(mem.RSSPeakKB, mem.RSSAfterKB)
		mem.Connections = n
		if n > 0 && mem.RSSAfterKB > mem.RSSBeforeKB {
			mem.BytesPerConnection = (mem.RSSAfterKB - mem.RSSBeforeKB) * 1024 / int64(n)
		}
		rep.Memory = mem
	}

	r.start = r.opts.Now()
	var end time.Time
	if r.opts.Duration > 0 {
		end = r.start.Add(r.opts.Duration)
	}
	progressCtx, stopProgress := context.WithCancel(context.Background())
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		r.progress(progressCtx)
	}()

	var cpu *cpuMeter
	if len(r.opts.CPUPIDs) > 0 {
		cpu = startCPU(r.opts.CPUPIDs)
	}
	var gen sync.WaitGroup
	if r.opts.Rate > 0 || r.opts.MaxRate {
		gen.Add(1)
		go func() {
			defer gen.Done()
			r.generate(ctx, end)
		}()
	}
	if r.opts.NavRate > 0 {
		gen.Add(1)
		go func() {
			defer gen.Done()
			r.navigate(ctx, end)
		}()
	}
	gen.Wait()
	r.sendEnd = r.opts.Now()
	if cpu != nil {
		rep.CPU = cpu.stop()
	}

	// Drain: wait for every acknowledged message to reach an agent and every
	// reply to reach the SMS API, or for Drain to pass.
	expectDelivery := r.opts.Agents > 0
	expectAPI := r.fake != nil && r.opts.Agents > 0
	drainStart := time.Now()
	drainEnd := drainStart.Add(r.opts.Drain)
	wait := func(until time.Time, done func() bool) {
		for !done() && time.Now().Before(until) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	settled := func() bool { return r.led.settled(expectDelivery, expectAPI) && r.pendingReplies() == 0 }
	wait(drainStart.Add(r.opts.Drain/2), settled)
	if !settled() {
		// End of shift: conversations that wait for a free agent (all
		// agents at capacity) are not lost; releasing every conversation
		// lets the node offer them, so that what stays undelivered really
		// is lost.
		rep.EndOfShiftRelease = true
		for _, a := range r.agents {
			select {
			case a.releaseAll <- struct{}{}:
			default:
			}
		}
	}
	wait(drainEnd, settled)
	stopProgress()
	<-progressDone
	stopAgents()
	agentWG.Wait()
	r.wg.Wait()

	rep.TwilioURL = r.FakeTwilioURL()
	r.fill(rep, expectDelivery, expectAPI)
	if r.opts.AdminToken != "" && len(rep.LostMessages) > 0 {
		r.checkStored(rep.LostMessages)
		rep.Failures = failures(rep, expectDelivery)
	}
	return rep, nil
}

// pendingReplies counts replies written but neither acknowledged nor
// refused.
func (r *Runner) pendingReplies() int {
	r.led.mu.Lock()
	defer r.led.mu.Unlock()
	n := 0
	for _, rp := range r.led.replies {
		if !rp.acked && !rp.refused {
			n++
		}
	}
	return n
}

// connectAgents dials every simulated agent (a few at a time), starts them
// on agentCtx and waits until each has said it is available.
func (r *Runner) connectAgents(ctx, agentCtx context.Context, wg *sync.WaitGroup) (int, error) {
	want := r.opts.Agents
	if r.opts.Demo {
		want = 0
		if r.opts.DemoAgent {
			want = 1
		}
	}
	if want == 0 {
		return 0, nil
	}
	type result struct {
		a   *simAgent
		err error
	}
	results := make(chan result, want)
	sem := make(chan struct{}, 32)
	for i := 0; i < want; i++ {
		name := fmt.Sprintf("load%s-%04d", r.opts.RunID, i)
		if r.opts.Demo {
			name = "demo-bot"
		}
		target := r.opts.Targets[i%len(r.opts.Targets)]
		go func(seed uint64) {
			sem <- struct{}{}
			defer func() { <-sem }()
			a, err := r.dialAgent(ctx, target, name, seed)
			results <- result{a, err}
		}(r.opts.Seed + uint64(i)*7919)
	}
	var agents []*simAgent
	var errs []error
	for i := 0; i < want; i++ {
		res := <-results
		if res.err != nil {
			errs = append(errs, res.err)
			continue
		}
		agents = append(agents, res.a)
		wg.Add(1)
		go func(a *simAgent) {
			defer wg.Done()
			a.run(agentCtx)
		}(res.a)
	}
	if len(errs) > 0 {
		r.led.mu.Lock()
		r.led.errors["agent_dial"] += int64(len(errs))
		r.led.mu.Unlock()
		r.log.Warn("some agents could not connect", "failed", len(errs), "first", errs[0])
	}
	if len(agents) == 0 {
		return 0, fmt.Errorf("loadgen: no agent could connect: %w", errors.Join(errs...))
	}
	deadline := time.After(r.opts.Timeout + time.Duration(len(agents))*time.Millisecond)
	for _, a := range agents {
		select {
		case <-a.ready:
		case <-deadline:
			return len(agents), fmt.Errorf("loadgen: agent %s got no greeting within %v", a.name, r.opts.Timeout)
		case <-ctx.Done():
			return len(agents), ctx.Err()
		}
	}
	r.agentsN.Store(int64(len(agents)))
	r.agents = agents
	return len(agents), nil
}

// startFake starts the fake Twilio Messages API on TwilioAddr. Every
// CreateMessage request is read for its reply marker before the fake
// handles it.
func (r *Runner) startFake() error {
	ln := r.opts.TwilioListener
	if ln == nil && r.opts.TwilioAddr == "" {
		return nil
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", r.opts.TwilioAddr); err != nil {
			return fmt.Errorf("loadgen: fake Twilio API on -twilio-addr %s: %w (is another sbload running? nodes must point TWILIO_API_URL here)", r.opts.TwilioAddr, err)
		}
	}
	r.fakeLn = ln
	r.fake = fakeapi.New(r.opts.AccountSID, r.opts.AuthToken)
	r.fake.SetAutoStatus("sent", "delivered")
	api := r.fake.Handler()
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/Messages.json") {
			body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
			if err != nil {
				http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
				return
			}
			at := r.opts.Now()
			if form, err := url.ParseQuery(string(body)); err == nil {
				text := form.Get("Body")
				if seq, ok := findMarker(text, replyMarker, r.opts.RunID); ok {
					r.led.replyAtAPI(seq, at)
				}
				if r.fakeHit != nil {
					r.fakeHit(form.Get("To"), text)
				}
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		api.ServeHTTP(w, req)
	})
	r.fakeSrv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	r.fakeWG.Add(1)
	go func() {
		defer r.fakeWG.Done()
		if err := r.fakeSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("fake Twilio API stopped", "err", err)
		}
	}()
	return nil
}

func (r *Runner) stopFake() {
	if r.fakeSrv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.fakeSrv.Shutdown(ctx)
	r.fake.Close()
	r.fakeWG.Wait()
}

// checkStored asks the first node, with the admin token, whether each lost
// message was stored at all: it tells a routing loss from a storage loss.
func (r *Runner) checkStored(lost []LostMessage) {
	for i := range lost {
		req, _ := http.NewRequest(http.MethodGet, r.opts.Targets[0]+"/conversations/"+url.PathEscape(lost[i].Phone), nil)
		req.Header.Set("Authorization", "Bearer "+r.opts.AdminToken)
		resp, err := r.client.Do(req)
		if err != nil {
			continue
		}
		var list []protocol.Message
		if resp.StatusCode == http.StatusOK {
			json.NewDecoder(resp.Body).Decode(&list)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue
		}
		stored := false
		for _, m := range list {
			if seq, ok := findMarker(m.Text, inMarker, r.opts.RunID); ok && seq == lost[i].Seq {
				stored = true
			}
		}
		lost[i].Stored = &stored
	}
}

// rssKB sums the resident set sizes of pids (Linux), in KiB; unreadable
// ones count as zero.
func rssKB(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
				total += kb
			}
		}
	}
	return total
}

// waitUntil sleeps until t on the run's clock (open loop: the schedule, not
// the node, decides when the next request goes). It reports false when ctx
// ended first.
func (r *Runner) waitUntil(ctx context.Context, t time.Time) bool {
	d := t.Sub(r.opts.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
