package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The node writes f.MarshalJSON() to agents directly (session.enqueue), so
// it must give the bytes json.Marshal(f) gives, HTML escaping included.
func TestFrameMarshalJSONIsMarshal(t *testing.T) {
	m := Message{ID: "m1", Phone: "+15550100000", Direction: In, Text: `<b>"fish" & chips</b> ` + "\u2028", Received: 1700000000000, Status: StatusReceived}
	for _, f := range []Frame{
		{Type: TypeUpdate, Phone: m.Phone, List: []Message{m}},
		{Type: TypeAssigned, Phone: m.Phone, List: []Message{m, m}},
		{Type: TypeAlert, Text: "<script>&"},
		{Type: TypeStatus, Phone: m.Phone, ID: "m1", Status: StatusDelivered},
		{Type: TypeReleased, Phone: m.Phone, Reason: "a<b"},
	} {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: MarshalJSON\n%s\nwant json.Marshal\n%s", f.Type, got, want)
		}
	}
}
