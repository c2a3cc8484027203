package transform

import (
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Annotated is a message flowing through the pipeline with what the stages
// learned about it. It holds the message's time, not a rendered phrase: the
// phrase depends on "now" and is produced by RelTime.Phrase at view time.
type Annotated struct {
	Message   protocol.Message
	Time      time.Time // when the message was received, from Message.Received
	Sentiment Score     // set by the Sentiment stage; zero Mark means not scored
}

// Since renders the relative time of a with the default formatter.
func (a Annotated) Since(now time.Time) string { return defaultRelTime.Phrase(a.Time, now) }

// RelativeTime is the stage that turns messages into Annotated items carrying
// their time.
func RelativeTime() Stage[protocol.Message, Annotated] {
	return func(in iter.Seq[protocol.Message]) iter.Seq[Annotated] {
		return func(yield func(Annotated) bool) {
			for m := range in {
				if !yield(Annotate(m)) {
					return
				}
			}
		}
	}
}

// Annotate wraps one message, converting its millisecond timestamp.
func Annotate(m protocol.Message) Annotated {
	return Annotated{Message: m, Time: time.UnixMilli(m.Received)}
}

// RelTimeOptions configures a RelTime. The zero value is usable.
type RelTimeOptions struct {
	// Format wraps durations ("45 seconds", "a minute", "3 hours"); it must
	// contain exactly one %s. Zero value: "%s ago".
	Format string
	// DateLayout renders times two days old or more. Zero value: "Jan 2"
	// within the same year as now, "Jan 2, 2006" otherwise.
	DateLayout string
	// Location is the time zone of dates. Zero value: time.Local.
	Location *time.Location
}

// RelTime renders relative-time phrases. It is immutable and safe for
// concurrent use.
//
// The phrases, for an age d = now - t:
//
//	d < 10s            "just now" (also for times in the future: clock skew)
//	10s ≤ d < 60s      "45 seconds ago"
//	60s ≤ d < 2m       "a minute ago"
//	2m ≤ d < 60m       "12 minutes ago"
//	60m ≤ d < 2h       "an hour ago"
//	2h ≤ d < 24h       "3 hours ago"
//	24h ≤ d < 48h      "yesterday"
//	d ≥ 48h            a date: "Mar 4" (same year) or "Mar 4, 2025"
//
// Units are truncated, never rounded up: 59.9 s is "59 seconds ago".
type RelTime struct {
	format     string
	dateLayout string
	loc        *time.Location
}

var defaultRelTime = &RelTime{format: "%s ago", loc: time.Local}

// NewRelTime validates opts and returns a formatter.
func NewRelTime(opts RelTimeOptions) (*RelTime, error) {
	r := &RelTime{format: opts.Format, dateLayout: opts.DateLayout, loc: opts.Location}
	if r.format == "" {
		r.format = "%s ago"
	}
	if strings.Count(r.format, "%") != 1 || !strings.Contains(r.format, "%s") {
		return nil, fmt.Errorf("transform: relative time format %q: %w", opts.Format, errBadFormat)
	}
	if r.loc == nil {
		r.loc = time.Local
	}
	return r, nil
}

var errBadFormat = errors.New("must contain exactly one %s and no other verb")

// Phrase renders the age of t at now.
func (r *RelTime) Phrase(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf(r.format, fmt.Sprintf("%d seconds", int(d/time.Second)))
	case d < 2*time.Minute:
		return fmt.Sprintf(r.format, "a minute")
	case d < time.Hour:
		return fmt.Sprintf(r.format, fmt.Sprintf("%d minutes", int(d/time.Minute)))
	case d < 2*time.Hour:
		return fmt.Sprintf(r.format, "an hour")
	case d < 24*time.Hour:
		return fmt.Sprintf(r.format, fmt.Sprintf("%d hours", int(d/time.Hour)))
	case d < 48*time.Hour:
		return "yesterday"
	}
	lt, ln := t.In(r.loc), now.In(r.loc)
	layout := r.dateLayout
	if layout == "" {
		layout = "Jan 2"
		if lt.Year() != ln.Year() {
			layout = "Jan 2, 2006"
		}
	}
	return lt.Format(layout)
}
