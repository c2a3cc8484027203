package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeFlowRequests(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code string // "" = valid
	}{
		{`{"type":"transfer","phone":"+15551234567","to":"bob","note":"wants a refund"}`, ""},
		{`{"type":"transfer","phone":"+15551234567","to":""}`, ""},
		{`{"type":"transfer","phone":"+15551234567"}`, ""},
		{`{"type":"transfer","phone":"nope","to":"bob"}`, CodeInvalid},
		{`{"type":"transfer","phone":"+15551234567","to":"b b"}`, CodeInvalid},
		{`{"type":"transfer","phone":"+15551234567","to":"bob","note":"` + strings.Repeat("x", MaxNote+1) + `"}`, CodeInvalid},
		{`{"type":"transfer","phone":"+15551234567","to":7}`, CodeBadFrame},
		{`{"type":"assign","phone":"+15551234567","to":"bob"}`, ""},
		{`{"type":"assign","phone":"+15551234567","to":""}`, CodeInvalid},
		{`{"type":"assign","phone":"+15551234567","to":"bob","note":"x"}`, CodeInvalid},
	} {
		_, err := DecodeRequest([]byte(tc.in))
		var pe *Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%.60s: %v", tc.in, err)
		case tc.code != "" && (!errors.As(err, &pe) || pe.Code != tc.code):
			t.Errorf("%.60s: %v, want %s", tc.in, err, tc.code)
		}
	}
}

func TestFlowFrameShapes(t *testing.T) {
	for _, tc := range []struct {
		f    Frame
		want string
	}{
		{Frame{Type: TypeAssigned, Phone: "+1", Transfer: &Transfer{From: "alice", Note: "vip"}},
			`{"type":"assigned","phone":"+1","list":[],"transfer":{"from":"alice","note":"vip"}}`},
		{Frame{Type: TypeAssigned, Phone: "+1"}, `{"type":"assigned","phone":"+1","list":[]}`},
		{Frame{Type: TypeSupervisor, View: &QueueView{Waiting: []QueueWaiter{{"+1", 5, 1}}, Agents: []QueueAgent{{"bob", AgentAway, 3, 1, "n1", []string{"+2"}}}}},
			`{"type":"supervisor","view":{"waiting":[{"phone":"+1","waitingMs":5,"position":1}],"agents":[{"name":"bob","state":"away","capacity":3,"load":1,"node":"n1","conversations":["+2"]}]}}`},
		{Frame{Type: TypeColleagues}, `{"type":"colleagues","agents":[]}`},
		{Frame{Type: TypeColleagues, Agents: []string{"bob"}}, `{"type":"colleagues","agents":["bob"]}`},
		{Frame{Type: TypeTransfer, Phone: "+1", To: "bob", Note: "n"}, `{"type":"transfer","phone":"+1","to":"bob","note":"n"}`},
	} {
		b, err := json.Marshal(tc.f)
		if err != nil || string(b) != tc.want {
			t.Errorf("got %s (%v)\nwant %s", b, err, tc.want)
		}
	}
}
