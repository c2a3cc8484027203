package udpstats

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// got is a Metric with its strings copied and tags flattened for comparing.
type got struct {
	Name  string
	Value float64
	Raw   string
	Type  string
	Rate  float64
	Tags  string
	Sign  byte
}

func collect(b []byte) ([]got, int) {
	var out []got
	bad := ParseDatagram(b, func(m Metric) {
		var tags []string
		for _, t := range m.Tags {
			tags = append(tags, t.Key+"="+t.Value)
		}
		out = append(out, got{strings.Clone(m.Name), m.Value, strings.Clone(m.Raw), m.Type,
			m.SampleRate, strings.Join(tags, ","), m.Sign})
	})
	return out, bad
}

func TestParseDatagram(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []got
		bad  int
	}{
		{"counter", "gorets:1|c", []got{{"gorets", 1, "1", "c", 1, "", 0}}, 0},
		{"counter with sample rate", "gorets:1|c|@0.1", []got{{"gorets", 1, "1", "c", 0.1, "", 0}}, 0},
		{"gauge", "gaugor:333|g", []got{{"gaugor", 333, "333", "g", 1, "", 0}}, 0},
		{"gauge minus is relative", "gaugor:-10|g", []got{{"gaugor", -10, "-10", "g", 1, "", '-'}}, 0},
		{"gauge plus is relative", "gaugor:+4|g", []got{{"gaugor", 4, "+4", "g", 1, "", '+'}}, 0},
		{"timer", "glork:320|ms", []got{{"glork", 320, "320", "ms", 1, "", 0}}, 0},
		{"timer with rate", "glork:320|ms|@0.1", []got{{"glork", 320, "320", "ms", 0.1, "", 0}}, 0},
		{"decimal timer", "route.latency.p99:3.2|ms", []got{{"route.latency.p99", 3.2, "3.2", "ms", 1, "", 0}}, 0},
		{"histogram", "h:5|h", []got{{"h", 5, "5", "h", 1, "", 0}}, 0},
		{"distribution", "d:5|d", []got{{"d", 5, "5", "d", 1, "", 0}}, 0},
		{"set of numbers", "uniques:765|s", []got{{"uniques", 765, "765", "s", 1, "", 0}}, 0},
		{"set of strings", "users:alice|s", []got{{"users", 0, "alice", "s", 1, "", 0}}, 0},
		{"dogstatsd tags", "switchboard.sms.in:3|c|#node:n1", []got{{"switchboard.sms.in", 3, "3", "c", 1, "node=n1", 0}}, 0},
		{"tags rate and extras", "x:2|c|@0.5|#a:b,flag,c:d:e|c:abc|T1656581400",
			[]got{{"x", 2, "2", "c", 0.5, "a=b,flag=,c=d:e", 0}}, 0},
		{"multi value", "lat:1:2.5|ms|#n:1", []got{{"lat", 1, "1", "ms", 1, "n=1", 0}, {"lat", 2.5, "2.5", "ms", 1, "n=1", 0}}, 0},
		{"several lines, CRLF, empty lines", "a:1|c\r\n\nb:2|g\n", []got{{"a", 1, "1", "c", 1, "", 0}, {"b", 2, "2", "g", 1, "", 0}}, 0},
		{"events and service checks ignored", "_e{5,4}:title|text\n_sc|name|0\na:1|c", []got{{"a", 1, "1", "c", 1, "", 0}}, 0},
		{"no colon", "gorets|c", nil, 1},
		{"empty name", ":1|c", nil, 1},
		{"no type", "gorets:1", nil, 1},
		{"unknown type", "gorets:1|x", nil, 1},
		{"not a number", "gorets:abc|c", nil, 1},
		{"NaN and Inf", "a:NaN|g\nb:Inf|c\nc:-inf|ms", nil, 3},
		{"empty value", "gorets:|c", nil, 1},
		{"bad rate", "a:1|c|@0\nb:1|c|@2\nc:1|c|@x", nil, 3},
		{"one bad value spoils the line", "lat:1:x|ms", nil, 1},
		{"bad between good", "a:1|c\nbroken\nb:2|c", []got{{"a", 1, "1", "c", 1, "", 0}, {"b", 2, "2", "c", 1, "", 0}}, 1},
		{"empty datagram", "", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, bad := collect([]byte(tt.in))
			if bad != tt.bad {
				t.Errorf("bad = %d, want %d", bad, tt.bad)
			}
			if fmt.Sprint(g) != fmt.Sprint(tt.want) {
				t.Errorf("got  %v\nwant %v", g, tt.want)
			}
		})
	}
}

func TestDecoderDoesNotAllocate(t *testing.T) {
	b := []byte("switchboard.seq:41|g|#node:n1,part:1/1\nswitchboard.sms.in:3|c|#node:n1\nx:1.5|ms|@0.5")
	var d Decoder
	sum := 0.0
	fn := func(m Metric) { sum += m.Value }
	d.Parse(b, fn) // grow the tag scratch once
	if n := testing.AllocsPerRun(100, func() { d.Parse(b, fn) }); n != 0 {
		t.Fatalf("Parse allocates %v times per datagram", n)
	}
}

func FuzzParseDatagram(f *testing.F) {
	for _, s := range []string{
		"gorets:1|c|@0.1", "gaugor:-10|g", "glork:320|ms", "users:alice|s",
		"switchboard.seq:41|g|#node:n1,part:1/2\nswitchboard.sms.in:3|c|#node:n1",
		"lat:1:2|ms|#a,b:c", "_e{1,1}:a|b", "a:1|c|@", "::|||#,,:", "\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lines := 1 + strings.Count(string(b), "\n")
		n := 0
		bad := ParseDatagram(b, func(m Metric) {
			n++
			if m.Name == "" || m.Raw == "" {
				t.Fatalf("empty name or value in %q", b)
			}
			if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) || !(m.SampleRate > 0 && m.SampleRate <= 1) {
				t.Fatalf("bad value %v or rate %v from %q", m.Value, m.SampleRate, b)
			}
			if strings.ContainsAny(m.Name, "\n|") {
				t.Fatalf("name %q crosses a separator", m.Name)
			}
		})
		if bad < 0 || bad > lines {
			t.Fatalf("bad = %d for %d lines", bad, lines)
		}
		// The aggregator must survive anything too.
		a := NewAggregator(AggregatorOptions{})
		a.Add(testEpoch, "192.0.2.1:1", b)
		a.Tick(testEpoch.Add(time.Hour))
	})
}
