package switchboard

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/switchboard/protocol"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

// get fetches an admin URL and returns the status and body.
func (h *harness) get(path, bearer string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func texts(list []protocol.Message) []string {
	out := make([]string, len(list))
	for i, m := range list {
		out[i] = m.Text
	}
	return out
}

func TestSearchAdminAndAgent(t *testing.T) {
	h := startNode(t, nil)
	const c1, c2, c3 = "+15552220001", "+15552220002", "+15552220003"
	alice := h.agent("alice", 2)
	h.sms("SMs1", c1, "My camera order is late")
	alice.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c1 }, waitLong)
	h.sms("SMs2", c2, "CAMERA broken!")
	alice.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c2 }, waitLong)
	bob := h.agent("bob", 1)
	h.sms("SMs3", c3, "a camera for bob")
	bob.Expect(protocol.TypeAssigned, func(f protocol.Frame) bool { return f.Phone == c3 }, waitLong)
	alice.Send(protocol.Frame{Type: protocol.TypeResponse, Phone: c1, Message: "Your camera ships today", Ref: "a1"})
	alice.Expect(protocol.TypeAck, nil, waitLong)

	// Admin: every conversation, newest first, paged.
	var ans searchAnswer
	if code := sbt.GetJSON(t, h.base+"/search?q=Camera", testAdmin, &ans); code != 200 {
		t.Fatalf("GET /search = %d", code)
	}
	want := []string{"Your camera ships today", "a camera for bob", "CAMERA broken!", "My camera order is late"}
	if !slices.Equal(texts(ans.List), want) || ans.More || !slices.Equal(ans.Words, []string{"camera"}) {
		t.Fatalf("search camera = %+v", ans)
	}
	if m := ans.List[0]; m.Phone != c1 || m.Direction != protocol.Out || m.Agent != "alice" || m.ID == "" || m.Received == 0 {
		t.Fatalf("first result = %+v", m)
	}
	var page searchAnswer
	sbt.GetJSON(t, h.base+"/search?q=camera&limit=2", testAdmin, &page)
	if !slices.Equal(texts(page.List), want[:2]) || !page.More {
		t.Fatalf("page 1 = %+v", page)
	}
	sbt.GetJSON(t, h.base+"/search?q=camera&limit=2&before="+page.List[1].ID, testAdmin, &page)
	if !slices.Equal(texts(page.List), want[2:]) || page.More {
		t.Fatalf("page 2 = %+v", page)
	}
	sbt.GetJSON(t, h.base+"/search?q=camera+late&phone="+url.QueryEscape(c1), testAdmin, &page)
	if !slices.Equal(texts(page.List), want[3:]) {
		t.Fatalf("camera late in c1 = %+v", page)
	}
	sbt.GetJSON(t, h.base+"/search?q=nothing", testAdmin, &page)
	if page.List == nil || len(page.List) != 0 || page.More {
		t.Fatalf("no match = %+v, want an empty list", page)
	}
	for _, tc := range []struct {
		path, bearer string
		code         int
		body         string
	}{
		{"/search?q=camera", "wrong", 401, "admin token required"},
		{"/search", testAdmin, 400, "q: the query holds no word"},
		{"/search?q=%21%3F", testAdmin, 400, "q: the query holds no word"},
		{"/search?q=is+it+the", testAdmin, 400, `q: only common words, such as "is"; add a less common word`},
		{"/search?q=a+b+c+d+e+f+g+h+i", testAdmin, 400, "q: the query holds 9 words; at most 8"},
		{"/search?q=" + strings.Repeat("x", 257), testAdmin, 400, "q: the query is 257 bytes; at most 256"},
		{"/search?q=camera&limit=0", testAdmin, 400, "limit must be a number from 1 to 200"},
		{"/search?q=camera&limit=x", testAdmin, 400, "limit must be"},
		{"/search?q=camera&phone=5551", testAdmin, 400, "phone: phone number must be in E.164"},
		{"/search?q=camera&before=nope", testAdmin, 400, "before: no message nope"},
		{"/search?q=camera&phone=%2B15552220003&before=" + ans.List[0].ID, testAdmin, 400, "before: no message " + ans.List[0].ID + " in +15552220003"},
	} {
		code, body := h.get(tc.path, tc.bearer)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}

	// Agents find only their own conversations.
	alice.Send(protocol.Frame{Type: protocol.TypeSearch, Query: "camera", Ref: "q1"})
	r := alice.Expect(protocol.TypeResults, nil, waitLong)
	if r.Ref != "q1" || r.Query != "camera" || r.More || !slices.Equal(texts(r.List), []string{want[0], want[2], want[3]}) {
		t.Fatalf("alice's results = %+v", r)
	}
	bob.Send(protocol.Frame{Type: protocol.TypeSearch, Query: "camera", Ref: "q2", Limit: 5})
	r = bob.Expect(protocol.TypeResults, nil, waitLong)
	if r.Ref != "q2" || !slices.Equal(texts(r.List), []string{want[1]}) {
		t.Fatalf("bob's results = %+v", r)
	}
	alice.Send(protocol.Frame{Type: protocol.TypeSearch, Query: "camera", Limit: 1, Ref: "q3"})
	r = alice.Expect(protocol.TypeResults, nil, waitLong)
	if !r.More || len(r.List) != 1 {
		t.Fatalf("alice's page 1 = %+v", r)
	}
	alice.Send(protocol.Frame{Type: protocol.TypeSearch, Query: "camera", Before: r.List[0].ID, Ref: "q4"})
	if r = alice.Expect(protocol.TypeResults, nil, waitLong); !slices.Equal(texts(r.List), []string{want[2], want[3]}) {
		t.Fatalf("alice's page 2 = %+v", r)
	}
	for _, tc := range []struct {
		f    protocol.Frame
		code string
		text string
	}{
		{protocol.Frame{Type: protocol.TypeSearch, Query: "camera", Phone: c3, Ref: "e1"}, protocol.CodeNotAssigned, "conversation +15552220003 is not yours"},
		{protocol.Frame{Type: protocol.TypeSearch, Query: " ?! ", Ref: "e2"}, protocol.CodeInvalid, "q: the query holds no word"},
		{protocol.Frame{Type: protocol.TypeSearch, Query: "the", Ref: "e6"}, protocol.CodeInvalid, `q: only common words, such as "the"; add a less common word`},
		{protocol.Frame{Type: protocol.TypeSearch, Query: strings.Repeat("x", 300), Ref: "e3"}, protocol.CodeInvalid, "q is longer than 256 bytes"},
		{protocol.Frame{Type: protocol.TypeSearch, Query: "camera", Limit: 201, Ref: "e4"}, protocol.CodeInvalid, "limit must be between 1 and 200"},
		{protocol.Frame{Type: protocol.TypeSearch, Query: "camera", Before: ans.List[1].ID, Ref: "e5"}, protocol.CodeNotFound, "in your conversations"},
	} {
		alice.Send(tc.f)
		e := alice.Expect(protocol.TypeError, nil, waitLong)
		if e.Code != tc.code || e.Ref != tc.f.Ref || !strings.Contains(e.Text, tc.text) {
			t.Errorf("search %+v: error %+v, want %s %q", tc.f, e, tc.code, tc.text)
		}
	}

	// A released conversation leaves the default search but can still be
	// searched by phone, as its history can be read.
	alice.Send(protocol.Frame{Type: protocol.TypeRelease, Phone: c2})
	alice.Expect(protocol.TypeReleased, func(f protocol.Frame) bool { return f.Phone == c2 }, waitLong)
	alice.Send(protocol.Frame{Type: protocol.TypeSearch, Query: "camera", Ref: "q5"})
	if r = alice.Expect(protocol.TypeResults, nil, waitLong); !slices.Equal(texts(r.List), []string{want[0], want[3]}) {
		t.Fatalf("after release = %+v", r)
	}
	alice.Send(protocol.Frame{Type: protocol.TypeSearch, Query: "broken", Phone: c2, Ref: "q6"})
	if r = alice.Expect(protocol.TypeResults, nil, waitLong); r.Phone != c2 || !slices.Equal(texts(r.List), []string{want[2]}) {
		t.Fatalf("released conversation by phone = %+v", r)
	}
}
