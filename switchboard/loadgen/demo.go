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
// every few seconds, until ctx ends (or Duration passes). The customers are
// the same people with the same numbers in every run (demoPhone), so a run
// continues the conversations of the last one; only the MessageSids are new
// (a per-run nonce), so nothing a run sends is taken for a Twilio retry.
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
	var who []string
	for i := range customers {
		customers[i] = demoCustomer{
			name: demoNames[i], phone: demoPhone(i), mood: moods[(i*3+rnd.IntN(2))%len(moods)],
			user: demoUser(i),
		}
		byPhone[customers[i].phone] = customers[i].name
		who = append(who, customers[i].name+" "+customers[i].phone)
	}
	nonce := rand.Uint64() // this run's MessageSids, whatever the seed
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
	say("demo: the customers are %s (the agent shows their numbers; their names once the node keeps contacts)", strings.Join(who, ", "))
	say("demo: an agent sees them all with capacity %d or more (switchboard token alice -capacity %d); the others wait for a free place", n, n)
	say("demo: a second run continues these conversations; to start over, stop the node and delete its data directory (-data)")

	r.start = r.opts.Now()
	var warned atomic.Bool
	var wg sync.WaitGroup
	for i, c := range customers {
		wg.Add(1)
		go func(i int, c demoCustomer) {
			defer wg.Done()
			r.demoCustomer(ctx, c, r.opts.Seed+uint64(i)*104729, nonce, i, say, &warned)
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
func (r *Runner) demoCustomer(ctx context.Context, c demoCustomer, seed, nonce uint64, idx int, say func(string, ...any), warned *atomic.Bool) {
	rnd := rand.New(rand.NewPCG(seed, 0xc057))
	pace := r.opts.DemoPace
	if pace <= 0 {
		pace = 1
	}
	wait := func(d time.Duration) bool { return r.waitUntil(ctx, r.opts.Now().Add(time.Duration(float64(d)*pace))) }
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
		sid := fmt.Sprintf("SM%016x%016x", nonce, seq)
		r.led.sent(seq, sid, c.phone, r.opts.Now())
		code, err := r.postForm(target, "/sms/twilio", inboundForm(sid, c.phone, r.opts.From, text))
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
