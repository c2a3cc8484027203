package store

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestExportImportState: a store that imports another's applied state
// has its conversations, indexes and search, and importing it twice
// changes nothing; new messages after it do not reuse its sequence numbers.
func TestExportImportState(t *testing.T) {
	a, b := newStore(t), newStore(t)
	ctx := context.Background()
	in, _ := mustInbound(t, a, Inbound{Sid: "SM1", Phone: "+15550001", Text: "hello lighthouse", Received: time.UnixMilli(1000)})
	mustReply(t, a, Reply{Phone: "+15550001", Agent: "alice", Ref: "r1", Text: "hi", Sent: time.UnixMilli(2000)})
	kvs, gseq := exportKVs(t, a)
	for _, kv := range kvs {
		if !StateKey(kv.Key) || strings.HasPrefix(string(kv.Key), pOutbox) {
			t.Fatalf("exported %q", kv.Key)
		}
	}
	for range 2 {
		if err := b.ImportState(ctx, kvs, gseq); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := a.Conversation("+15550001")
	got, err := b.Conversation("+15550001")
	if err != nil || !reflect.DeepEqual(got, want) || len(got) != 2 {
		t.Fatalf("imported conversation = %+v, %v; want %+v", got, err, want)
	}
	if m, err := b.MessageByRef("alice", "r1"); err != nil || m.Text != "hi" {
		t.Fatalf("by ref = %+v, %v", m, err)
	}
	if found, _, err := b.Search("lighthouse", "", 10); err != nil || len(found) != 1 || found[0].ID != in.ID {
		t.Fatalf("search = %+v, %v", found, err)
	}
	// A retry of the imported message is a duplicate; a new one comes after.
	if _, dup := mustInbound(t, b, Inbound{Sid: "SM1", Phone: "+15550001", Text: "hello lighthouse", Received: time.UnixMilli(1000)}); !dup {
		t.Fatal("the imported message was stored again")
	}
	mustInbound(t, b, Inbound{Sid: "SM2", Phone: "+15550001", Text: "third", Received: time.UnixMilli(3000)})
	if got, _ := b.Conversation("+15550001"); len(got) != 3 || got[2].Text != "third" {
		t.Fatalf("after a new message: %+v", got)
	}
	if err := b.ImportState(ctx, []KV{{Key: []byte(keyCheck), Value: []byte("x")}}, 0); err == nil || !strings.Contains(err.Error(), "not part of the applied state") {
		t.Fatalf("import of the checkpoint key: %v", err)
	}
}
