package httpbody

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     io.Reader
		want     string
		wantOK   bool
		wantCode int
		wantText string
	}{
		{"under the limit", strings.NewReader("hello"), "hello", true, 200, ""},
		{"at the limit", strings.NewReader("0123456789"), "0123456789", true, 200, ""},
		{"over the limit", strings.NewReader("0123456789x"), "", false, 413, "body larger than 10 bytes\n"},
		{"broken", io.MultiReader(strings.NewReader("abc"), errReader{}), "", false, 400, "cannot read body\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/x", tc.body)
			body, ok := Read(w, r, 10)
			if string(body) != tc.want || ok != tc.wantOK || w.Code != tc.wantCode || w.Body.String() != tc.wantText {
				t.Fatalf("Read = %q, %v; answered %d %q; want %q, %v, %d %q", body, ok, w.Code, w.Body.String(), tc.want, tc.wantOK, tc.wantCode, tc.wantText)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
