package switchboard

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/sms/twilio"
	"github.com/switchboard/switchboard/switchboard/sms/twilio/twiliotest"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

func TestTwilioRegisterAtStart(t *testing.T) {
	tests := []struct {
		name      string
		publicURL string
		setup     func(fake *twiliotest.Server) // the fake account's numbers
		wantURL   string                        // the number's SmsUrl afterwards
		wantLog   []string
	}{
		{
			name:      "sets the webhook",
			publicURL: "https://sms.example.com",
			setup:     func(f *twiliotest.Server) { f.AddNumber(testFrom) },
			wantURL:   "https://sms.example.com/sms/twilio",
			wantLog:   []string{"twilio webhook registered", "url=https://sms.example.com/sms/twilio"},
		},
		{
			name:      "public URL with a path prefix and a trailing slash",
			publicURL: "https://example.com/switchboard/",
			setup:     func(f *twiliotest.Server) { f.AddNumber(testFrom) },
			wantURL:   "https://example.com/switchboard/sms/twilio",
			wantLog:   []string{"twilio webhook registered"},
		},
		{
			name:      "number not in the account: logged, node keeps running",
			publicURL: "https://sms.example.com",
			setup:     func(f *twiliotest.Server) { f.AddNumber("+15559998888") },
			wantLog:   []string{"twilio webhook NOT registered", "number=" + testFrom, "not found", "by hand"},
		},
		{
			name:      "SMS application attached: refused, logged",
			publicURL: "https://sms.example.com",
			setup: func(f *twiliotest.Server) {
				n := f.AddNumber(testFrom)
				n.SmsAppSid = "AP0123"
				f.SetNumber(n)
			},
			wantLog: []string{"twilio webhook NOT registered", "AP0123"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := twiliotest.NewServer(testAccount, testAuthToken)
			t.Cleanup(fake.Close)
			tc.setup(fake)
			logs := &sbt.SyncBuffer{}
			h := startNode(t, func(o *Options, c *Config) {
				o.TwilioRegister = true
				o.PublicURL = tc.publicURL
				o.TwilioAPIURL = fake.URL()
				c.Logger = slog.New(slog.NewTextHandler(logs, nil))
			})
			sbt.WaitFor(t, waitLong, "registration outcome in the log", func() bool {
				return strings.Contains(logs.String(), "twilio webhook")
			})
			for _, want := range tc.wantLog {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, logs.String())
				}
			}
			// The test account SID is "AC" + the token: look past it.
			if strings.Contains(strings.ReplaceAll(logs.String(), testAccount, ""), testAuthToken) {
				t.Error("the log leaks the auth token")
			}
			if got, _ := fake.Number(testFrom); got.SmsURL != tc.wantURL {
				t.Errorf("SmsUrl = %q, want %q", got.SmsURL, tc.wantURL)
			} else if tc.wantURL != "" && got.SmsMethod != "POST" {
				t.Errorf("SmsMethod = %q, want POST", got.SmsMethod)
			}
			// Whatever happened, the node serves.
			resp, err := http.Get(h.base + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("readyz = %d after registration", resp.StatusCode)
			}
		})
	}
}

func TestTwilioRegisterOffByDefault(t *testing.T) {
	fake := twiliotest.NewServer(testAccount, testAuthToken)
	t.Cleanup(fake.Close)
	fake.AddNumber(testFrom)
	logs := &sbt.SyncBuffer{}
	h := startNode(t, func(o *Options, c *Config) {
		o.TwilioAPIURL = fake.URL()
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	// The node is up and has logged its start; nothing touched the number.
	if code := sbt.GetJSON(t, h.base+"/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("readyz = %d", code)
	}
	if got, _ := fake.Number(testFrom); got.SmsURL != "" {
		t.Fatalf("number changed without -twilio-register: %+v", got)
	}
	if strings.Contains(logs.String(), "twilio webhook") {
		t.Fatalf("registration attempted:\n%s", logs.String())
	}
}

// TestRegisterTwilioDirect drives registerTwilio itself: its error is what
// tests and callers can check, and a cancelled context ends it.
func TestRegisterTwilioDirect(t *testing.T) {
	fake := twiliotest.NewServer(testAccount, testAuthToken)
	t.Cleanup(fake.Close)
	h := startNode(t, func(o *Options, _ *Config) { o.TwilioAPIURL = fake.URL() })

	if err := h.node.registerTwilio(context.Background()); !errors.Is(err, twilio.ErrNumberNotFound) {
		t.Fatalf("no number: err = %v, want ErrNumberNotFound", err)
	}
	fake.AddNumber(testFrom)
	if err := h.node.registerTwilio(context.Background()); err != nil {
		t.Fatalf("register: %v", err)
	}
	if got, _ := fake.Number(testFrom); got.SmsURL != testPublic+"/sms/twilio" {
		t.Fatalf("SmsUrl = %q", got.SmsURL)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := h.node.registerTwilio(ctx); err == nil {
		t.Fatal("cancelled registration succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancelled registration took %v", d)
	}
	// Missing settings are reported, not attempted (a bare Node: nothing
	// but its options and logger is used).
	bare := &Node{opts: h.node.opts, log: slog.New(slog.DiscardHandler), logBase: slog.New(slog.DiscardHandler)}
	bare.opts.PublicURL = ""
	if err := bare.registerTwilio(context.Background()); err == nil || !strings.Contains(err.Error(), "-public-url") {
		t.Fatalf("without public URL: err = %v", err)
	}
}

func TestOptionsDeploySettings(t *testing.T) {
	base := func() Options {
		o := NewOptions()
		o.PublicURL = "https://sms.example.com"
		o.TwilioAccountSID, o.TwilioAuthToken, o.TwilioFrom = testAccount, testAuthToken, testFrom
		return o
	}
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr string // "" = valid
	}{
		{"register with everything", func(o *Options) { o.TwilioRegister = true }, ""},
		{"register without public URL", func(o *Options) { o.TwilioRegister = true; o.PublicURL = "" }, "-twilio-register: needs -public-url"},
		{"register without credentials", func(o *Options) {
			o.TwilioRegister = true
			o.TwilioAccountSID, o.TwilioAuthToken, o.TwilioFrom = "", "", ""
		}, "-twilio-register: needs TWILIO_ACCOUNT_SID"},
		{"no public URL without register", func(o *Options) { o.PublicURL = "" }, ""},
		{"exchange", func(o *Options) { o.AMQPExchange = "switchboard.test-1:a_b" }, ""},
		{"exchange with a space", func(o *Options) { o.AMQPExchange = "a b" }, "-amqp-exchange"},
		{"exchange with a slash", func(o *Options) { o.AMQPExchange = "a/b" }, "-amqp-exchange"},
		{"exchange too long", func(o *Options) { o.AMQPExchange = strings.Repeat("x", 201) }, "-amqp-exchange"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.mutate(&o)
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}

	t.Run("environment", func(t *testing.T) {
		env := map[string]string{"SWITCHBOARD_TWILIO_REGISTER": "true", "SWITCHBOARD_AMQP_EXCHANGE": "sb-e2e"}
		o := NewOptions()
		if err := LoadEnv(&o, func(k string) string { return env[k] }); err != nil {
			t.Fatal(err)
		}
		if !o.TwilioRegister || o.AMQPExchange != "sb-e2e" {
			t.Fatalf("LoadEnv: register=%v exchange=%q", o.TwilioRegister, o.AMQPExchange)
		}
		env["SWITCHBOARD_TWILIO_REGISTER"] = "perhaps"
		if err := LoadEnv(&o, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_TWILIO_REGISTER") {
			t.Fatalf("bad bool: %v", err)
		}
	})
}
