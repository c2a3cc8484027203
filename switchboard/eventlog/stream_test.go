package eventlog_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/bus/amqpbus"
	"github.com/switchboard/switchboard/switchboard/bus/bustest"
	"github.com/switchboard/switchboard/switchboard/eventlog"
	"github.com/switchboard/switchboard/switchboard/eventlog/logtest"
)

func TestStreamConformance(t *testing.T) {
	url := bustest.AMQPURL(t)
	logtest.Run(t, func(t *testing.T) eventlog.Log {
		ex := bustest.UniqueName(t, "evl")
		bustest.DeleteOnCleanup(t, url, func() ([]string, []string) {
			return []string{ex, ex + ".dlx"}, []string{ex + ".log", ex + ".dead"}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := amqpbus.Dial(ctx, amqpbus.Options{URL: url, Exchange: ex, QueuePrefix: ex + ".", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		l := eventlog.NewStream(b, "log", []string{"t.#"})
		// Declare the stream, so that appends are routed from now on.
		sub, err := l.Subscribe(ctx, 0, func(context.Context, eventlog.Entry) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		sub.Close()
		return l
	})
}
