package switchboard

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/udpstats"
)

func TestDefaultsStayOnLoopback(t *testing.T) {
	o := NewOptions()
	if o.StatsIface != "lo" || o.StatsGroup != "239.255.77.77:5554" || o.StatsInterval != time.Second {
		t.Fatalf("metrics defaults = %q %q %v", o.StatsIface, o.StatsGroup, o.StatsInterval)
	}
	if udpstats.DefaultTTL > 1 {
		t.Fatalf("default multicast TTL %d leaves the local network", udpstats.DefaultTTL)
	}
	if o.AMQPURL != "" || o.TwilioAPIURL != "" {
		t.Fatal("defaults must need nothing outside the machine")
	}
}

func TestEnvThenFlags(t *testing.T) {
	env := map[string]string{
		"PORT":                       "5000",
		"SWITCHBOARD_ADDR":           "127.0.0.1:9999", // PORT comes first
		"CLOUDAMQP_URL":              "amqp://cloud/",
		"SWITCHBOARD_GRACE":          "45s",
		"SWITCHBOARD_STATS_INTERVAL": "2s",
		"SWITCHBOARD_SECRET":         "from-env",
	}
	o := NewOptions()
	if err := LoadEnv(&o, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	BindFlags(fs, &o)
	if err := fs.Parse([]string{"-secret", "from-flag", "-capacity", "5"}); err != nil {
		t.Fatal(err)
	}
	if o.Addr != ":5000" || o.AMQPURL != "amqp://cloud/" || o.Grace != 45*time.Second ||
		o.StatsInterval != 2*time.Second || o.Secret != "from-flag" || o.DefaultCapacity != 5 {
		t.Fatalf("options = %+v", o)
	}
	// SWITCHBOARD_AMQP_URL wins over Heroku's CLOUDAMQP_URL.
	env["SWITCHBOARD_AMQP_URL"] = "amqp://mine/"
	o = NewOptions()
	LoadEnv(&o, func(k string) string { return env[k] })
	if o.AMQPURL != "amqp://mine/" {
		t.Fatalf("AMQPURL = %q", o.AMQPURL)
	}
	if err := LoadEnv(&o, func(k string) string {
		if k == "SWITCHBOARD_GRACE" {
			return "soon"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_GRACE") {
		t.Fatalf("bad env value: %v", err)
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"addr", func(o *Options) { o.Addr = "8080" }, "-addr"},
		{"public url", func(o *Options) { o.PublicURL = "sms.example.com" }, "-public-url"},
		{"amqp url", func(o *Options) { o.AMQPURL = "http://broker" }, "-amqp"},
		{"stats group", func(o *Options) { o.StatsGroup = "10.0.0.1:5554" }, "-stats-group"},
		{"grace", func(o *Options) { o.Grace = 0 }, "-grace"},
		{"capacity", func(o *Options) { o.DefaultCapacity = 0 }, "-capacity"},
		{"twilio half set", func(o *Options) { o.TwilioAccountSID = "AC1" }, "TWILIO_AUTH_TOKEN"},
		{"twilio without from", func(o *Options) { o.TwilioAccountSID, o.TwilioAuthToken = "AC1", "tok" }, "TWILIO_FROM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOptions()
			tt.mutate(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	o := NewOptions()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestSSHSettings(t *testing.T) {
	env := map[string]string{"SWITCHBOARD_SSH_ADDR": "127.0.0.1:2222", "SWITCHBOARD_SSH_KEYS": "/etc/switchboard/agents"}
	o := NewOptions()
	if o.SSHAddr != "" {
		t.Fatalf("SSH is on by default: %q", o.SSHAddr)
	}
	if err := LoadEnv(&o, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if o.SSHAddr != "127.0.0.1:2222" || o.SSHKeys != "/etc/switchboard/agents" {
		t.Fatalf("options = %q %q", o.SSHAddr, o.SSHKeys)
	}
	for _, tc := range []struct {
		addr, keys, secret, want string
	}{
		{"127.0.0.1:2222", "", "s", "-ssh-addr: needs -ssh-keys"},
		{"127.0.0.1:2222", "k", "", "-ssh-addr: needs -secret"},
		{"2222", "k", "s", "-ssh-addr: address 2222: missing port"},
	} {
		o := NewOptions()
		o.SSHAddr, o.SSHKeys, o.Secret = tc.addr, tc.keys, tc.secret
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc, err, tc.want)
		}
	}
}
