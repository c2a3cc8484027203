package twiliotest

import (
	"net/http"
	"testing"
	"time"
)

// TestStartWaitAndCleanup: Start serves the fake until the test ends, and
// WaitSent/WaitAccepted return what fakeapi recorded.
func TestStartWaitAndCleanup(t *testing.T) {
	var s *Server
	t.Run("serve", func(t *testing.T) {
		s = Start(t, "AC0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef")
		s.AddMessage(SentMessage{To: "+15551234567", From: "+15550000000", Body: "hi"})
		if got := s.WaitSent(t, 1, time.Minute); len(got) != 1 || got[0].Body != "hi" {
			t.Fatalf("WaitSent = %+v", got)
		}
		if got := s.WaitAccepted(t, 1, time.Minute); len(got) != 1 || got[0].HTTPStatus != http.StatusCreated {
			t.Fatalf("WaitAccepted = %+v", got)
		}
	})
	if resp, err := http.Get(s.URL() + "/"); err == nil {
		resp.Body.Close()
		t.Fatal("the fake still serves after its test ended")
	}
}
