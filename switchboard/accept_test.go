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

// recentKeys remembers a key for exactly its window, across a change of
// generation, and drops a generation whole once it is a window old.
func TestRecentKeys(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	r := newRecentKeys(time.Minute)
	r.put("a", acceptedID{id: "1", at: at(0)}, at(0))
	r.put("b", acceptedID{id: "2", at: at(50)}, at(50))
	if a, ok := r.get("a", at(59)); !ok || a.id != "1" {
		t.Fatalf("a at 59 s = %+v, %v", a, ok)
	}
	if _, ok := r.get("a", at(60)); ok {
		t.Fatal("a remembered past its window")
	}
	r.put("c", acceptedID{id: "3", at: at(61)}, at(61)) // a new generation: a and b are the old one
	if len(r.cur) != 1 || len(r.old) != 2 {
		t.Fatalf("generations %d new, %d old; want 1 and 2", len(r.cur), len(r.old))
	}
	if a, ok := r.get("b", at(109)); !ok || a.id != "2" {
		t.Fatalf("b at 109 s (59 s old, in the old generation) = %+v, %v", a, ok)
	}
	if _, ok := r.get("b", at(110)); ok {
		t.Fatal("b remembered past its window")
	}
	r.put("d", acceptedID{id: "4", at: at(121)}, at(121)) // a and b are dropped whole
	if _, ok := r.old["b"]; ok || len(r.old) != 1 || len(r.cur) != 1 {
		t.Fatalf("after two windows: old %v, new %v", r.old, r.cur)
	}
}
