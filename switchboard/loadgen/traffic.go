package loadgen

// This file holds the traffic a run sends: the open-loop schedule of
// signed webhooks and the shop's navigation events.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/switchboard/sms/twilio"
)

// job is one inbound SMS to post.
type job struct {
	seq      int64
	sid      string
	phone    string
	text     string
	intended time.Time
	dup      bool
	target   int
}

// generate posts webhooks from now until end (zero = until ctx ends): at
// Rate per second on a fixed schedule, or back to back from every worker
// with MaxRate.
func (r *Runner) generate(ctx context.Context, end time.Time) {
	jobs := make(chan job, r.opts.Workers*4)
	var wg sync.WaitGroup
	for i := 0; i < r.opts.Workers; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			if r.opts.MaxRate {
				rnd := rand.New(rand.NewPCG(seed, 0x77))
				for ctx.Err() == nil {
					now := r.opts.Now()
					if !end.IsZero() && !now.Before(end) {
						return
					}
					r.post(r.newJob(rnd, r.randomCustomer(rnd), now))
				}
				return
			}
			for j := range jobs {
				r.post(j)
			}
		}(r.opts.Seed + uint64(i) + 1)
	}
	if !r.opts.MaxRate {
		r.schedule(ctx, end, jobs)
	}
	close(jobs)
	wg.Wait()
}

func (r *Runner) randomCustomer(rnd *rand.Rand) string {
	return customerPhone(r.opts.RunID, rnd.IntN(r.opts.Customers))
}

func (r *Runner) newJob(rnd *rand.Rand, phone string, intended time.Time) job {
	seq := r.seq.Add(1)
	text := pickText(rnd, pickMood(rnd)) + " " + marker(inMarker, r.opts.RunID, seq)
	return job{
		seq: seq, sid: messageSid(r.opts.RunID, seq), phone: phone, text: text, intended: intended,
		dup:    rnd.Float64() < r.opts.DupShare,
		target: int(seq) % len(r.opts.Targets),
	}
}

// schedule feeds jobs at their intended times. When the workers fall
// behind, the send blocks but the intended times do not move, so the delay
// shows in the latency.
func (r *Runner) schedule(ctx context.Context, end time.Time, jobs chan<- job) {
	rnd := rand.New(rand.NewPCG(r.opts.Seed, 0x5c4ed))
	interval := float64(time.Second) / r.opts.Rate
	burstLeft, burstPhone := 0, ""
	var burstAt time.Time
	for i := int64(0); ; i++ {
		intended := r.start.Add(time.Duration(float64(i) * interval))
		if !end.IsZero() && !intended.Before(end) {
			return
		}
		if !r.waitUntil(ctx, intended) {
			return
		}
		var j job
		switch {
		case burstLeft > 0:
			// A burst: several texts from one number at the same moment.
			burstLeft--
			j = r.newJob(rnd, burstPhone, burstAt)
		default:
			j = r.newJob(rnd, r.randomCustomer(rnd), intended)
			if r.opts.BurstSize > 1 && rnd.Float64() < r.opts.BurstShare {
				burstLeft, burstPhone, burstAt = r.opts.BurstSize-1, j.phone, intended
			}
		}
		r.led.sent(j.seq, j.sid, j.phone, j.intended)
		select {
		case jobs <- j:
		case <-ctx.Done():
			// Sent to the ledger but never posted: take it back out.
			r.led.mu.Lock()
			delete(r.led.in, j.seq)
			r.led.counts.sent--
			r.led.mu.Unlock()
			return
		}
	}
}

// post sends one webhook (and its duplicate) and records the answers.
func (r *Runner) post(j job) {
	if r.opts.MaxRate {
		r.led.sent(j.seq, j.sid, j.phone, j.intended)
	}
	form := inboundForm(j.sid, j.phone, r.opts.From, j.text)
	code, err := r.postForm(r.opts.Targets[j.target], "/sms/twilio", form)
	at := r.opts.Now()
	ok := r.classify("webhook", code, err, http.StatusOK)
	r.led.answered(j.seq, ok, at)
	if j.dup {
		// Twilio retries reach any node behind the balancer.
		target := (j.target + 1) % len(r.opts.Targets)
		code, err := r.postForm(r.opts.Targets[target], "/sms/twilio", form)
		r.led.duplicate(r.classify("webhook_dup", code, err, http.StatusOK))
	}
}

// classify counts an error kind unless the answer is want.
func (r *Runner) classify(what string, code int, err error, want int) bool {
	switch {
	case err != nil:
		kind := "conn"
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			kind = "timeout"
		}
		r.led.errorf(what + "_" + kind)
		return false
	case code != want:
		r.led.errorf(fmt.Sprintf("%s_http_%d", what, code))
		return false
	}
	return true
}

func inboundForm(sid, from, to, body string) url.Values {
	return url.Values{
		"MessageSid":    {sid},
		"SmsSid":        {sid},
		"SmsMessageSid": {sid},
		"AccountSid":    {"AC00000000000000000000000000000000"},
		"From":          {from},
		"To":            {to},
		"Body":          {body},
		"NumMedia":      {"0"},
		"NumSegments":   {"1"},
		"FromCountry":   {"US"},
		"ApiVersion":    {"2010-04-01"},
	}
}

// postForm posts a signed form and returns the status code. The body is
// read to the end so that the connection is reused.
func (r *Runner) postForm(target, path string, form url.Values) (int, error) {
	if r.opts.AccountSID != "" {
		form.Set("AccountSid", r.opts.AccountSID)
	}
	req, err := http.NewRequest(http.MethodPost, target+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1 (sbload)")
	if r.opts.AuthToken != "" {
		base := r.opts.PublicURL
		if base == "" {
			base = target
		}
		req.Header.Set(twilio.SignatureHeader, twilio.Signature(r.opts.AuthToken, strings.TrimSuffix(base, "/")+path, form))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// navEvent is the body of POST /nav (DESIGN.md).
type navEvent struct {
	User    string `json:"user"`
	Product string `json:"product"`
	Type    string `json:"type"`
	Phone   string `json:"phone,omitempty"`
}

// navigate posts navigation events at NavRate until end.
func (r *Runner) navigate(ctx context.Context, end time.Time) {
	rnd := rand.New(rand.NewPCG(r.opts.Seed, 0x7a7))
	events := make(chan navEvent, 64)
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for ev := range events {
				r.postNav(r.opts.Targets[i%len(r.opts.Targets)], ev)
			}
		}(i)
	}
	defer func() {
		close(events)
		wg.Wait()
	}()
	interval := float64(time.Second) / r.opts.NavRate
	for i := int64(0); ; i++ {
		at := r.start.Add(time.Duration(float64(i) * interval))
		if !end.IsZero() && !at.Before(end) {
			return
		}
		if !r.waitUntil(ctx, at) {
			return
		}
		ev := navEvent{User: fmt.Sprintf("u-%04x", rnd.IntN(1<<16)), Product: pickProduct(rnd), Type: "PRODUCT"}
		switch k := rnd.IntN(20); {
		case k == 0:
			ev.Type = "CATEGORY"
		case k == 1:
			ev.Type = "SEARCH"
		}
		if rnd.Float64() < r.opts.NavLinkShare {
			i := rnd.IntN(r.opts.Customers)
			ev.User = fmt.Sprintf("c-%05d", i)
			ev.Phone = customerPhone(r.opts.RunID, i)
		}
		select {
		case events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// postNav posts one navigation event. A node without POST /nav answers 404
// or 405: counted quietly as unsupported.
func (r *Runner) postNav(target string, ev navEvent) int {
	body, _ := json.Marshal(ev)
	resp, err := r.client.Post(target+"/nav", "application/json", bytes.NewReader(body))
	if err != nil {
		r.led.errorf("nav_conn")
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r.led.nav(resp.StatusCode)
	if c := resp.StatusCode; c != http.StatusAccepted && c != http.StatusNotFound && c != http.StatusMethodNotAllowed && c != http.StatusOK && c != http.StatusNoContent {
		r.led.errorf(fmt.Sprintf("nav_http_%d", c))
	}
	return resp.StatusCode
}
