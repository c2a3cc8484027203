package switchboard

import (
	"strings"
	"testing"
)

func TestDefaultAddressIsLoopback(t *testing.T) {
	o := NewOptions()
	if err := LoadEnv(&o, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if o.Addr != "127.0.0.1:8080" || !Loopback(o.Addr) {
		t.Fatalf("without PORT or -addr the node listens on %q, want 127.0.0.1:8080", o.Addr)
	}
	o.Secret = "dev-secret" // the quick start's, on loopback
	if err := o.Validate(); err != nil {
		t.Fatalf("the quick start's settings: %v", err)
	}
	// Heroku's PORT listens everywhere, so it needs a real secret.
	if err := LoadEnv(&o, func(k string) string { return map[string]string{"PORT": "5000"}[k] }); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "-secret: too weak to listen on :5000") {
		t.Fatalf("PORT=5000 with dev-secret: %v", err)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.0.0.2:80": true, "[::1]:8080": true, "localhost:8080": true, "LOCALHOST:1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "10.0.0.5:8080": false, "sms.example.com:443": false, "8080": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestWeakSecretsOffLoopback(t *testing.T) {
	strong := "9f86d081884c7d659a2feaa0c55ad015"
	for _, tc := range []struct {
		addr, secret, admin string
		want                string // "" = accepted
	}{
		{":8080", "change-me", "", `-secret: too weak to listen on :8080, which is not loopback (it contains the placeholder "change-me")`},
		{"0.0.0.0:8080", "dev-secret", "", `placeholder "dev-secret"`},
		{"[::]:8080", "dev-secret-change-me", "", "placeholder"},
		{":8080", "Short-but-rand0m", "", ""}, // 16 characters
		{":8080", "Short-but-rand0", "", "it has 15 characters, fewer than 16"},
		{":8080", strong, "change-me-too", "-admin-token: too weak"},
		{":8080", strong, strong, ""},
		{":8080", "", "", ""}, // no secret: no agent is accepted at all
		{"127.0.0.1:8080", "change-me", "x", ""},
		{"localhost:9", "dev-secret", "", ""},
	} {
		o := NewOptions()
		o.Addr, o.Secret, o.AdminToken = tc.addr, tc.secret, tc.admin
		err := o.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s with secret %q admin %q: %v", tc.addr, tc.secret, tc.admin, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s with secret %q admin %q: %v, want an error with %q", tc.addr, tc.secret, tc.admin, err, tc.want)
		}
	}
}
