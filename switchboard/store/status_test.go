package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/syndtr/goleveldb/leveldb"
)

// BenchmarkApplyStatus applies delivery statuses from the log the way a
// cluster node does (ApplyLog, runs of 8): each reply gets queued with
// its provider id, then sent, then delivered. One op is one status.
func BenchmarkApplyStatus(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := WithoutSync(context.Background()) // as the applier: the checkpoint syncs
	const run = 8
	replies := b.N/3 + 1
	ids := make([]string, replies)
	items := make([]LogItem, 0, run)
	flush := func() {
		if len(items) == 0 {
			return
		}
		res, err := s.ApplyLog(ctx, items)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		items = items[:0]
	}
	for i := range ids {
		ids[i] = s.NewID()
		items = append(items, LogItem{Reply: &Reply{
			ID: ids[i], Phone: fmt.Sprintf("+1555400%04d", i%1000), Agent: "alice", Ref: fmt.Sprint(i),
			Text: "Thanks for writing! Your order ships tomorrow.", Sent: time.UnixMilli(1732200000000), LogPos: int64(i + 1),
		}})
		if len(items) == run {
			flush()
		}
	}
	flush()
	steps := []protocol.Status{protocol.StatusQueued, protocol.StatusSent, protocol.StatusDelivered}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := ids[i/3]
		items = append(items, LogItem{Status: &LogStatus{ID: id, Status: steps[i%3], ProviderID: "SM" + id}})
		if len(items) == run {
			flush()
		}
	}
	flush()
}

// TestApplyStatusBothFormats: a status applied from the log gives the same
// answer, and stores the same, for a reply whose status key repeats its
// phone, outbox sequence and agent (written with it) and for one stored
// before that (the status key absent: read from the record).
func TestApplyStatusBothFormats(t *testing.T) {
	ctx := WithoutSync(context.Background())
	run := func(t *testing.T, old bool) []LogResult {
		s := newStore(t)
		id := s.NewID()
		if _, err := s.ApplyLog(ctx, []LogItem{{Reply: &Reply{ID: id, Phone: "+15551230000", Agent: "alice", Ref: "r1",
			Text: "on its way", Sent: time.UnixMilli(1732200000000), LogPos: 1}}}); err != nil {
			t.Fatal(err)
		}
		if old {
			if err := s.db.view(func(db *leveldb.DB) error { return db.Delete(statusKey(id), nil) }); err != nil {
				t.Fatal(err)
			}
		}
		var out []LogResult
		for _, st := range []protocol.Status{protocol.StatusQueued, protocol.StatusSent, protocol.StatusSent, protocol.StatusDelivered} {
			res, err := s.ApplyLog(ctx, []LogItem{{Status: &LogStatus{ID: id, Status: st, ProviderID: "SM1"}}})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, res[0])
		}
		if m, err := s.MessageByProviderID("SM1"); err != nil || m.ID != id || m.Status != protocol.StatusDelivered || m.Text != "on its way" {
			t.Fatalf("by provider id: %+v %v", m, err)
		}
		if p, err := s.PendingReplies(); err != nil || len(p) != 0 {
			t.Fatalf("outbox after delivery: %v %v", p, err)
		}
		// An unknown id and an inbound message are refused in both formats.
		in, _, err := s.AppendInbound(ctx, Inbound{Sid: "SMin", Phone: "+15551230000", To: "+15559999999", Text: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.ApplyLog(ctx, []LogItem{{Status: &LogStatus{ID: in.ID, Status: protocol.StatusSent}}, {Status: &LogStatus{ID: "nope", Status: protocol.StatusSent}}})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res[0].Err, ErrInvalid) || !errors.Is(res[1].Err, ErrNotFound) {
			t.Fatalf("inbound: %v, unknown: %v", res[0].Err, res[1].Err)
		}
		return out
	}
	want := []struct {
		st    protocol.Status
		fresh bool
	}{{protocol.StatusQueued, false}, {protocol.StatusSent, true}, {protocol.StatusSent, false}, {protocol.StatusDelivered, true}}
	for _, old := range []bool{false, true} {
		got := run(t, old)
		for i, w := range want {
			m := got[i].Msg
			if got[i].Err != nil || got[i].Fresh != w.fresh || m.Status != w.st || m.Phone != "+15551230000" ||
				m.Agent != "alice" || m.Direction != protocol.Out || m.ID == "" {
				t.Errorf("old %v, status %d: %+v, want %s fresh %v for alice's reply", old, i, got[i], w.st, w.fresh)
			}
		}
	}
}
