package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestIsTemporary(t *testing.T) {
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"send error 500", &SendError{Temporary: true, StatusCode: 500}, true},
		{"send error 400", &SendError{StatusCode: 400, Code: 21211}, false},
		{"wrapped send error 429", fmt.Errorf("op: %w", &SendError{Temporary: true, StatusCode: 429}), true},
		{"send error wins over ctx", &SendError{Temporary: true, Err: context.DeadlineExceeded}, true},
		{"net op error", netErr, true},
		{"url error around net error", &url.Error{Op: "Post", URL: "http://x", Err: netErr}, true},
		{"econnreset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"canceled", context.Canceled, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{"url error around canceled", &url.Error{Op: "Post", URL: "http://x", Err: context.Canceled}, false},
		{"unknown", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTemporary(tt.err); got != tt.want {
				t.Fatalf("IsTemporary(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestTemporaryStatus(t *testing.T) {
	for code, want := range map[int]bool{200: false, 400: false, 401: false, 404: false, 429: true, 500: true, 502: true, 503: true, 599: true, 600: false} {
		if got := TemporaryStatus(code); got != want {
			t.Errorf("TemporaryStatus(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestSendErrorMessage(t *testing.T) {
	cause := errors.New("cause")
	e := &SendError{Temporary: true, StatusCode: 503, Code: 20503, Message: "Service Unavailable", Err: cause}
	want := "sms: send failed (temporary): HTTP 503: code 20503: Service Unavailable: cause"
	if e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
	if !errors.Is(e, cause) {
		t.Fatal("Unwrap does not reach the cause")
	}
}

func fixed(r float64) func() float64 { return func() float64 { return r } }

func TestBackoffDelay(t *testing.T) {
	base := Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Attempts: 6}
	withJitter := func(r float64) Backoff { b := base; b.Jitter = 0.2; b.Rand = fixed(r); return b }
	tests := []struct {
		name    string
		b       Backoff
		attempt int
		want    time.Duration
	}{
		{"attempt 1 is Initial", base, 1, 500 * time.Millisecond},
		{"attempt 0 counts as 1", base, 0, 500 * time.Millisecond},
		{"attempt 2 doubles", base, 2, time.Second},
		{"attempt 5", base, 5, 8 * time.Second},
		{"attempt 7 just capped", base, 7, 30 * time.Second},
		{"huge attempt stays capped", base, 10_000, 30 * time.Second},
		{"jitter low end", withJitter(0), 2, 800 * time.Millisecond},
		{"jitter middle", withJitter(0.5), 2, time.Second},
		{"jitter high end", withJitter(0.999999999), 2, 1200 * time.Millisecond},
		{"jitter never above Max", withJitter(0.999999999), 9, 30 * time.Second},
		{"jitter below Max at cap", withJitter(0), 9, 24 * time.Second},
		{"zero Initial", Backoff{}, 3, 0},
		{"no Max means uncapped", Backoff{Initial: time.Second}, 4, 8 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.b.Delay(tt.attempt)
			// float rounding may cost a nanosecond at the high end
			if d := got - tt.want; d < -time.Microsecond || d > time.Microsecond {
				t.Fatalf("Delay(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestBackoffDelayJitterBounds(t *testing.T) {
	b := DefaultBackoff
	for attempt := 1; attempt <= 10; attempt++ {
		nominal := Backoff{Initial: b.Initial, Max: b.Max}.Delay(attempt)
		lo, hi := time.Duration(float64(nominal)*0.8), min(time.Duration(float64(nominal)*1.2), b.Max)
		for range 200 {
			if d := b.Delay(attempt); d < lo || d > hi {
				t.Fatalf("attempt %d: Delay = %v outside [%v, %v]", attempt, d, lo, hi)
			}
		}
	}
}

func TestBackoffValidate(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
		want string // substring of the error, "" = valid
	}{
		{"default", DefaultBackoff, ""},
		{"zero initial", Backoff{Max: time.Second}, "Initial"},
		{"max below initial", Backoff{Initial: time.Second, Max: time.Millisecond}, "Max"},
		{"negative jitter", Backoff{Initial: 1, Max: 1, Jitter: -0.1}, "Jitter"},
		{"jitter above 1", Backoff{Initial: 1, Max: 1, Jitter: 1.5}, "Jitter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.b.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want error naming %s", err, tt.want)
			}
		})
	}
}

// scripted is a Sender that answers from a list of errors, then succeeds.
type scripted struct {
	mu    sync.Mutex
	errs  []error
	calls int
}

func (s *scripted) Name() string { return "scripted" }

func (s *scripted) Send(ctx context.Context, m Outgoing) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return Result{}, err
	}
	return Result{ProviderID: "P-" + m.ID, Status: protocol.StatusQueued}, nil
}

func TestDeliverRetries(t *testing.T) {
	e500 := &SendError{Temporary: true, StatusCode: 500}
	e429 := &SendError{Temporary: true, StatusCode: 429}
	e400 := &SendError{StatusCode: 400, Code: 21211, Message: "invalid To"}
	b := Backoff{Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond, Attempts: 4}
	tests := []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   error  // nil and wantText "" = success; else in the chain
		wantText  string // substring of the error
		wantWaits []time.Duration
	}{
		{"first try", nil, 1, nil, "", nil},
		{"500 then 429 then ok", []error{e500, e429}, 3, nil, "", []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}},
		{"permanent is not retried", []error{e400}, 1, e400, "not retried", nil},
		{"temporary then permanent", []error{e500, e400}, 2, e400, "not retried", []time.Duration{100 * time.Millisecond}},
		{"gives up after Attempts", []error{e500, e500, e500, e500, e500}, 4, e500, "gave up after 4 attempts",
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}},
		{"unknown error is not retried", []error{errors.New("boom")}, 1, nil, "boom", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{errs: tt.errs}
			var waits, slept []time.Duration
			var retried []int
			sleep := func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }
			onRetry := func(attempt int, err error, wait time.Duration) {
				retried = append(retried, attempt)
				waits = append(waits, wait)
				if !IsTemporary(err) {
					t.Errorf("onRetry got a permanent error %v", err)
				}
			}
			res, _, err := Deliver(context.Background(), s, Outgoing{ID: "m1"}, Plan{Backoff: b, Sleep: sleep, OnRetry: onRetry})
			if s.calls != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", s.calls, tt.wantCalls)
			}
			if fmt.Sprint(waits) != fmt.Sprint(tt.wantWaits) || fmt.Sprint(slept) != fmt.Sprint(tt.wantWaits) {
				t.Fatalf("waits = %v, slept = %v, want %v", waits, slept, tt.wantWaits)
			}
			for i, a := range retried {
				if a != i+1 {
					t.Fatalf("onRetry attempts = %v, want 1, 2, ...", retried)
				}
			}
			if tt.wantErr == nil && tt.wantText == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if res.ProviderID != "P-m1" || res.Status != protocol.StatusQueued {
					t.Fatalf("result = %+v", res)
				}
				return
			}
			if err == nil {
				t.Fatal("err = nil")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v in chain", err, tt.wantErr)
			}
			for _, sub := range []string{tt.wantText, "m1", "scripted"} {
				if !strings.Contains(err.Error(), sub) {
					t.Fatalf("err %q does not contain %q", err, sub)
				}
			}
		})
	}
}

func TestDeliverCancelDuringSleep(t *testing.T) {
	b := Backoff{Initial: time.Hour, Max: time.Hour, Attempts: 3}
	t.Run("default sleep", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := &scripted{errs: []error{&SendError{Temporary: true, StatusCode: 503}}}
		start := time.Now()
		// Cancel as the wait begins: the real Sleep must notice at once
		// instead of waiting an hour.
		_, _, err := Deliver(ctx, s, Outgoing{ID: "m"}, Plan{Backoff: b, OnRetry: func(int, error, time.Duration) { cancel() }})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if s.calls != 1 {
			t.Fatalf("calls = %d, want 1", s.calls)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Fatalf("took %v", el)
		}
	})
	t.Run("injected sleep blocks until cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		s := &scripted{errs: []error{&SendError{Temporary: true, StatusCode: 500}}}
		sleeping := make(chan struct{})
		sleep := func(ctx context.Context, d time.Duration) error {
			close(sleeping)
			<-ctx.Done()
			return ctx.Err()
		}
		done := make(chan error, 1)
		go func() {
			_, _, err := Deliver(ctx, s, Outgoing{ID: "m"}, Plan{Backoff: b, Sleep: sleep})
			done <- err
		}()
		<-sleeping
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Deliver did not return after cancel")
		}
	})
	t.Run("already cancelled makes no attempt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s := &scripted{}
		if _, _, err := Deliver(ctx, s, Outgoing{ID: "m"}, Plan{Backoff: b}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if s.calls != 0 {
			t.Fatalf("calls = %d, want 0", s.calls)
		}
	})
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(0) on cancelled ctx = %v", err)
	}
}

func TestConsole(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	s := NewConsole(logger)
	if s.Name() != "console" {
		t.Fatalf("Name = %q", s.Name())
	}
	res, err := s.Send(context.Background(), Outgoing{ID: "01J", To: "+15551234567", From: "+15550000000", Body: "Hello there", StatusCallback: "https://x/sms/twilio/status"})
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{ProviderID: "console-01J", Status: protocol.StatusSent}) {
		t.Fatalf("result = %+v", res)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	for k, want := range map[string]any{"component": "sms", "provider": "console", "id": "01J", "to": "+15551234567", "body": "Hello there"} {
		if rec[k] != want {
			t.Errorf("log %s = %v, want %v", k, rec[k], want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Send(ctx, Outgoing{ID: "x"}); IsTemporary(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled send: err = %v", err)
	}
}
