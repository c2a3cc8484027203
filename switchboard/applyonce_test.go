package switchboard

import (
	"testing"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// TestApplyOnceAlone: on a node alone, a webhook's message and an agent's
// reply are stored once, when accepted; the applier routes them with what
// that write stored (not storing, nor reading, them again), and they are
// routed and sent as before.
func TestApplyOnceAlone(t *testing.T) {
	h := startNode(t, nil)
	alice := h.agent("alice", 1)
	const phone = "+15551110001"
	h.sms("SMonce1", phone, "hello")
	if f := alice.Expect(protocol.TypeAssigned, nil, waitLong); f.Phone != phone || len(f.List) != 1 || f.List[0].Text != "hello" {
		t.Fatalf("assigned = %+v", f)
	}
	if n := h.node.cluster.storedOnce.Load(); n != 1 {
		t.Fatalf("%d entries applied with their accept's result, want 1 (the message)", n)
	}
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Message: "hi!", Ref: "r1"})
	ack := alice.Expect(protocol.TypeAck, nil, waitLong)
	if sent := h.twilio.WaitSent(t, 1, waitLong); sent[0].Body != "hi!" || sent[0].To != phone {
		t.Fatalf("sent = %+v", sent[0])
	}
	if n := h.node.cluster.storedOnce.Load(); n != 2 {
		t.Fatalf("%d entries applied with their accept's result, want 2 (the message and the reply)", n)
	}
	list := h.stored(phone)
	if len(list) != 2 || list[0].Text != "hello" || list[1].ID != ack.ID || list[1].Direction != protocol.Out {
		t.Fatalf("stored = %+v", list)
	}
}
