package switchboard

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/store"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// A webhook retried after its message is stored is a duplicate
// (sms.duplicate), on either log: the local log's write finds its sid,
// the stream log's acceptor finds it stored before publishing it again.
func TestInboundRetryIsDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *harness
	}{
		{"local log", func(t *testing.T) *harness { return startNode(t, nil) }},
		{"stream log", func(t *testing.T) *harness {
			amqpURL, ex := clusterExchange(t)
			h := startNode(t, clusterNode(amqpURL, ex, "n1"))
			waitReady(t, h)
			return h
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.start(t)
			const phone = "+15551110071"
			in := store.Inbound{Sid: "SMretry1", Phone: phone, Text: "hello"}
			ctx := context.Background()
			if dup, err := h.node.cluster.inbound(ctx, in, time.Now()); dup || err != nil {
				t.Fatalf("first webhook: dup %v, %v", dup, err)
			}
			sbt.WaitFor(t, waitLong, "the message stored", func() bool { return len(h.stored(phone)) == 1 })
			if dup, err := h.node.cluster.inbound(ctx, in, time.Now()); !dup || err != nil {
				t.Fatalf("retried webhook: dup %v, %v; want a duplicate", dup, err)
			}
			if list := h.stored(phone); len(list) != 1 {
				t.Fatalf("stored %d messages, want 1", len(list))
			}
		})
	}
}
