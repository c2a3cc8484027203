package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// demoCustomer is one person texting the shop in demo mode.
type demoCustomer struct {
	name  string
	phone string
	mood  Mood
	user  string
}

// runDemo plays a calm, lively stream for a person watching the agent
// client: a few named customers with moods, browsing products and texting
// every few seconds, until ctx ends (or Duration passes).
func (r *Runner) runDemo(ctx context.Context) (*Report, error) {
	if r.opts.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.Duration)
		defer cancel()
	}
	out := r.opts.Progress
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		if out == nil {
			return
		}
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(out, "%s  %s\n", r.opts.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	rnd := rand.New(rand.NewPCG(r.opts.Seed, 0xde70))
	n := r.opts.Customers
	if n > len(demoNames) {
		n = len(demoNames)
	}
	customers := make([]demoCustomer, n)
	byPhone := map[string]string{}
	for i := range customers {
		customers[i] = demoCustomer{
			name: demoNames[i], phone: customerPhone(r.opts.RunID, i), mood: moods[(i*3+rnd.IntN(2))%len(moods)],
			user: fmt.Sprintf("u-%04x", rnd.IntN(1<<16)),
		}
		byPhone[customers[i].phone] = customers[i].name
	}
	r.fakeHit = func(to, text string) {
		name := byPhone[to]
		if name == "" {
			name = to
		}
		say("SMS to %s: %q", name, text)
	}

	agentCtx, stopAgents := context.WithCancel(context.WithoutCancel(ctx))
	var agentWG sync.WaitGroup
	defer func() {
		stopAgents()
		agentWG.Wait()
		r.wg.Wait()
	}()
	if _, err := r.connectAgents(ctx, agentCtx, &agentWG); err != nil {
		return nil, err
	}
	say("demo: %d customers texting %s; connect the agent client to see them", n, strings.Join(r.opts.Targets, ", "))

	r.start = r.opts.Now()
	var warned atomic.Bool
	var wg sync.WaitGroup
	for i, c := range customers {
		wg.Add(1)
		go func(i int, c demoCustomer) {
			defer wg.Done()
			r.demoCustomer(ctx, c, r.opts.Seed+uint64(i)*104729, i, say, &warned)
		}(i, c)
	}
	wg.Wait()
	r.sendEnd = r.opts.Now()
	rep := &Report{Targets: r.opts.Targets, RunID: r.opts.RunID, Demo: true, Customers: n,
		Agents: int(r.agentsN.Load()), AgentsConnected: int(r.agentsN.Load()), Capacity: r.opts.Capacity}
	r.fill(rep, false, false)
	return rep, nil
}

// demoCustomer browses and texts until ctx ends. Between texts it waits a
// few seconds, so a person can read along.
func (r *Runner) demoCustomer(ctx context.Context, c demoCustomer, seed uint64, idx int, say func(string, ...any), warned *atomic.Bool) {
	rnd := rand.New(rand.NewPCG(seed, 0xc057))
	wait := func(d time.Duration) bool { return r.waitUntil(ctx, r.opts.Now().Add(d)) }
	// Stagger the first messages so they do not all arrive at once.
	if !wait(time.Duration(500+rnd.IntN(1500)*(idx+1)) * time.Millisecond) {
		return
	}
	target := r.opts.Targets[idx%len(r.opts.Targets)]
	for {
		// Browse a few products first, linked to the phone, so the agent
		// sees what the customer looked at.
		var viewed []string
		for k := 1 + rnd.IntN(3); k > 0; k-- {
			p := pickProduct(rnd)
			viewed = append(viewed, p)
			r.postNav(target, navEvent{User: c.user, Product: p, Type: "PRODUCT", Phone: c.phone})
			if !wait(time.Duration(300+rnd.IntN(900)) * time.Millisecond) {
				return
			}
		}
		if rnd.IntN(4) == 0 {
			c.mood = pickMood(rnd) // moods change
		}
		text := pickText(rnd, c.mood)
		seq := r.seq.Add(1)
		r.led.sent(seq, messageSid(r.opts.RunID, seq), c.phone, r.opts.Now())
		code, err := r.postForm(target, "/sms/twilio", inboundForm(messageSid(r.opts.RunID, seq), c.phone, r.opts.From, text))
		ok := r.classify("webhook", code, err, http.StatusOK)
		r.led.answered(seq, ok, r.opts.Now())
		switch {
		case ok:
			say("%-6s (%s, viewed %s) texts: %q", c.name, c.mood, strings.Join(viewed, ","), text)
		case warned.CompareAndSwap(false, true):
			hint := ""
			if code == http.StatusForbidden {
				hint = ": the node checks Twilio signatures; give sbload the node's TWILIO_AUTH_TOKEN and SWITCHBOARD_PUBLIC_URL (or run the node with -insecure-skip-signature)"
			}
			say("webhook to %s failed (HTTP %d, %v)%s", target, code, err, hint)
		}
		if !wait(time.Duration(3000+rnd.IntN(7000)) * time.Millisecond) {
			return
		}
	}
}
