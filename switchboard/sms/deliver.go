package sms

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Plan says how Deliver sends one message.
type Plan struct {
	// Backoff spaces the attempts and lookups and bounds their number.
	Backoff Backoff
	// Sleep waits between attempts; nil means Sleep.
	Sleep func(context.Context, time.Duration) error
	// OnRetry, if not nil, is called after each failed attempt or lookup
	// that will be retried, with its number, its error and the coming wait.
	OnRetry func(attempt int, err error, wait time.Duration)
	// Uncertain says that an earlier attempt may have reached the
	// provider: one before a restart, or one by another node. Deliver then
	// looks the message up (when the Sender is a Finder) before its first
	// attempt. An attempt of its own whose answer was lost (MaybeSent)
	// makes the next round look it up too.
	Uncertain bool
	// Since is the earliest time at which the provider can have created
	// the message: when it was stored, less the clock difference that can
	// separate our clock from the provider's.
	Since time.Time
	// Claim is asked about each message a lookup finds, newest first, and
	// answers whether it is this one's (and takes it): false when it
	// already belongs to another message with the same text. nil takes the
	// first.
	Claim func(Sent) bool
	// Ready, if not nil, is called before every attempt and every lookup;
	// an error stops Deliver and is returned wrapped. It waits while
	// sending must wait (a node that cannot hear its cluster) and fails
	// when it must not happen here at all.
	Ready func(context.Context) error
}

// Deliver sends m through s at most once as far as the provider can tell:
// it makes up to p.Backoff.Attempts attempts (lookups included), retrying
// only errors for which IsTemporary is true, and whenever an
// earlier attempt may have reached the provider (p.Uncertain, or an attempt
// whose answer was lost), it asks the provider (Finder) before trying
// again. found is true when the message was found there instead of sent;
// the Result then describes the found message. A cancelled ctx stops it
// at once: the returned error then matches ctx.Err() with errors.Is. The
// last attempt's error stays reachable with errors.As (*SendError).
//
// A lookup the provider refuses for good (no Finder, or a permanent error)
// does not stop the message: it is sent, so that it is not lost; a
// temporary lookup failure is retried like a failed attempt.
func Deliver(ctx context.Context, s Sender, m Outgoing, p Plan) (res Result, found bool, err error) {
	sleep := p.Sleep
	if sleep == nil {
		sleep = Sleep
	}
	finder, canFind := s.(Finder)
	uncertain := p.Uncertain && canFind
	attempts := max(p.Backoff.Attempts, 1)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return Result{}, false, fmt.Errorf("sms: send %s via %s: %w", m.ID, s.Name(), err)
		}
		if p.Ready != nil {
			if err := p.Ready(ctx); err != nil {
				return Result{}, false, fmt.Errorf("sms: send %s via %s: %w", m.ID, s.Name(), err)
			}
		}
		var err error
		if uncertain {
			var list []Sent
			list, err = finder.Find(ctx, m, p.Since)
			switch {
			case err == nil:
				for _, f := range list {
					if p.Claim == nil || p.Claim(f) {
						return Result{ProviderID: f.ProviderID, Status: f.Status}, true, nil
					}
				}
				uncertain = false // not there: no earlier attempt reached it
			case !IsTemporary(err):
				uncertain = false // cannot know: send rather than lose it
				err = nil
			default:
				err = fmt.Errorf("look up: %w", err)
			}
		}
		if err == nil {
			res, err = s.Send(ctx, m)
			if err == nil {
				return res, false, nil
			}
			if se, ok := errors.AsType[*SendError](err); ok && se.MaybeSent && canFind && ctx.Err() == nil {
				uncertain = true // the answer was lost, not necessarily the message
				if !se.Temporary {
					retry := *se
					retry.Temporary = true // found or not, the lookup decides
					err = &retry
				}
			}
		}
		if !IsTemporary(err) {
			return Result{}, false, fmt.Errorf("sms: send %s via %s: attempt %d of %d, not retried: %w", m.ID, s.Name(), attempt, attempts, err)
		}
		if attempt >= attempts {
			return Result{}, false, fmt.Errorf("sms: send %s via %s: gave up after %d attempts: %w", m.ID, s.Name(), attempt, err)
		}
		wait := p.Backoff.Delay(attempt)
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, wait)
		}
		if serr := sleep(ctx, wait); serr != nil {
			cause := ctx.Err()
			if cause == nil {
				cause = serr
			}
			return Result{}, false, fmt.Errorf("sms: send %s via %s: stopped waiting after attempt %d (%v): %w", m.ID, s.Name(), attempt, err, cause)
		}
	}
}
