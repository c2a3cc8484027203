package switchboard

import (
	"net"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Twilio may call back before the node has processed the API's answer: the
// status must not be lost.
func TestEarlyStatusCallback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h := startNode(t, func(o *Options, _ *Config) {
		o.Addr = addr
		o.PublicURL = "http://" + addr // the fake Twilio calls back here
	})
	h.twilio.SetAutoStatus("sent", "delivered")
	alice := h.agent("alice", 1)
	h.sms("SMearly1", "+15551140001", "hi")
	alice.Expect(protocol.TypeAssigned, nil, waitLong)
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Message: "hello", Ref: "e-1"})
	ack := alice.Expect(protocol.TypeAck, nil, waitLong)
	st := alice.Expect(protocol.TypeStatus, func(f protocol.Frame) bool { return f.Status == protocol.StatusDelivered }, waitLong)
	if st.ID != ack.ID {
		t.Fatalf("status = %+v", st)
	}
}

func TestEarlyStatusesHoldAndTake(t *testing.T) {
	var e earlyStatuses
	now := time.Unix(1000, 0)
	if e.hold("SM1", protocol.StatusSent, "", now, func() bool { return true }) {
		t.Fatal("held a callback whose message is known")
	}
	e.hold("SM1", protocol.StatusSent, "", now, func() bool { return false })
	e.hold("SM1", protocol.StatusDelivered, "", now, func() bool { return false })
	e.hold("SM2", protocol.StatusFailed, "x", now, func() bool { return false })
	// Old entries are dropped when new ones come.
	e.hold("SM3", protocol.StatusSent, "", now.Add(earlyTTL+time.Second), func() bool { return false })
	if got := e.take("SM1"); len(got) != 0 {
		t.Fatalf("expired entries kept: %+v", got)
	}
	if got := e.take("SM3"); len(got) != 1 || got[0].status != protocol.StatusSent {
		t.Fatalf("take = %+v", got)
	}
	if got := e.take("SM3"); len(got) != 0 {
		t.Fatal("take twice")
	}
}
