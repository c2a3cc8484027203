package monitor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/udpstats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name    string
		args    []string
		env     func(string) string
		group   string
		iface   string
		json    bool
		columns string
		err     string
	}{
		{"defaults", nil, env(), "239.255.77.77:5554", "lo", false, DefaultColumns, ""},
		{"own env", nil, env("UDPSTATS_GROUP", "239.1.2.3:9", "UDPSTATS_IFACE", "eth9", "UDPSTATS_JSON", "true"),
			"239.1.2.3:9", "eth9", true, DefaultColumns, ""},
		{"node env as fallback", nil, env("SWITCHBOARD_STATS_GROUP", "239.1.2.4:9", "SWITCHBOARD_STATS_IFACE", "eth8"),
			"239.1.2.4:9", "eth8", false, DefaultColumns, ""},
		{"own env beats node env", nil, env("UDPSTATS_GROUP", "239.1.2.3:9", "SWITCHBOARD_STATS_GROUP", "239.1.2.4:9"),
			"239.1.2.3:9", "lo", false, DefaultColumns, ""},
		{"flags win", []string{"-group", "239.9.9.9:1", "-json=false", "-columns", "a, b"},
			env("UDPSTATS_GROUP", "239.1.2.3:9", "UDPSTATS_JSON", "1"), "239.9.9.9:1", "lo", false, "a,b", ""},
		{"bad group flag", []string{"-group", "10.0.0.1:5"}, env(), "", "", false, "", "-group: "},
		{"bad env", nil, env("UDPSTATS_ONCE", "maybe"), "", "", false, "", "-once from the environment"},
		{"stray argument", []string{"x"}, env(), "", "", false, "", "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig(tt.args, tt.env, io.Discard)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Group != tt.group || cfg.Iface != tt.iface || cfg.JSON != tt.json || strings.Join(cfg.Columns, ",") != tt.columns {
				t.Fatalf("cfg %+v", cfg)
			}
		})
	}
}

func TestTableRender(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 10, 0, time.UTC)
	rep := func(node string, in, p99, agents float64) *udpstats.Report {
		return &udpstats.Report{Node: node, Interval: 2 * time.Second,
			Metrics: map[string]float64{"sms.in": in, "route.latency.p99": p99, "agents": agents},
			Types:   map[string]string{"sms.in": "c", "route.latency.p99": "ms", "agents": "g"}}
	}
	nodes := []udpstats.NodeState{
		{Node: "n1", LastSeen: now.Add(-300 * time.Millisecond), Interval: time.Second, Lost: 1, Last: rep("n1", 10, 3.25, 4)},
		{Node: "n2", LastSeen: now.Add(-time.Second), Interval: time.Second, Last: rep("n2", 4, 7.5, 2)},
		{Node: "old", LastSeen: now.Add(-5 * time.Second), Interval: time.Second, Lost: 9, Last: rep("old", 100, 99, 9)},
		{Node: "quiet", LastSeen: now, Interval: time.Second},
	}
	var b bytes.Buffer
	tb := &Table{Columns: []string{"sms.in", "route.latency.p99", "agents", "absent"}}
	tb.Render(&b, nodes, now, udpstats.AggregatorStats{Datagrams: 12, BadLines: 3, BadDatagrams: 1})
	want := `NODE        AGE  LOST  sms.in/s  route.latency.p99 ms  agents  absent
n1         0.3s     1       5.0                  3.25       4       -
n2         1.0s     0       2.0                  7.50       2       -
old        5.0s     9      50.0                 99.00       9       -
quiet      0.0s     0         -                     -       -       -
TOTAL (3)           1       7.0                  7.50       6       -
datagrams 12  bad lines 3  bad datagrams 1  duplicates 0
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	tb.ANSI = true
	tb.Render(&b, nodes, now, udpstats.AggregatorStats{})
	if s := b.String(); !strings.HasPrefix(s, ansiHome) || !strings.Contains(s, ansiGrey+"old") || !strings.HasSuffix(s, ansiClear) {
		t.Fatalf("ANSI frame %q", s)
	}
}

func testGroup(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return net.JoinHostPort("239.255.77.77", strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port))
}

// requireMulticastLo skips (or fails under CI) when a datagram sent to a
// group on lo does not come back; the fix is named in the message.
func requireMulticastLo(t *testing.T) {
	t.Helper()
	group := testGroup(t)
	got := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := udpstats.Listen(ctx, udpstats.ListenOptions{Group: group, Iface: "lo", Logger: quiet(),
		Aggregator: udpstats.AggregatorOptions{OnReport: func(udpstats.Report) {
			select {
			case got <- struct{}{}:
			default:
			}
		}}})
	if err == nil {
		defer l.Close()
		var w *udpstats.GroupWriter
		if w, err = udpstats.DialGroup(group, "lo", 0); err == nil {
			defer w.Close()
			for try := 0; try < 10 && err == nil; try++ {
				_, err = w.Write([]byte("switchboard.seq:1|g|#node:probe,part:1/1"))
				select {
				case <-got:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			if err == nil {
				err = fmt.Errorf("nothing came back in 1s")
			}
		}
	}
	msg := fmt.Sprintf("multicast on lo does not work here (%v); as root run: "+
		"ip link set lo multicast on && ip route add 239.0.0.0/8 dev lo", err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// emitEvery flushes e every d until the test ends.
func emitEvery(t *testing.T, e *udpstats.Emitter, d time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				_ = e.Flush()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; e.Close() })
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRunOnceTable(t *testing.T) {
	requireMulticastLo(t)
	group := testGroup(t)
	for _, node := range []string{"b", "a"} {
		e := udpstats.NewEmitter(udpstats.Options{Group: group, Node: node, ZeroTTL: true, Logger: quiet()})
		e.Gauge("agents").Set(3)
		emitEvery(t, e, 50*time.Millisecond)
	}
	var out bytes.Buffer
	// Garbage on the group is counted, not fatal.
	garbage(t, group)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := Run(ctx, Config{Group: group, Iface: "lo", Once: true, Prefix: udpstats.DefaultPrefix,
		Columns: []string{"agents"}, Interval: 200 * time.Millisecond}, &out, quiet())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[1], "a ") || !strings.HasPrefix(lines[2], "b ") ||
		!strings.HasPrefix(lines[3], "TOTAL (2)") || !strings.HasSuffix(lines[3], " 6") {
		t.Fatalf("table:\n%s", out.String())
	}
}

func garbage(t *testing.T, group string) {
	t.Helper()
	// Noise on the group, on lo with TTL 0: the monitor must count it and
	// carry on. The aggregator tests cover garbage in depth.
	s, err := udpstats.DialGroup(group, "lo", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go func() {
		for range 20 {
			_, _ = s.Write([]byte("\x00\xffnot statsd|||\n:|c"))
			time.Sleep(10 * time.Millisecond)
		}
	}()
}

func TestBinaryJSONOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	requireMulticastLo(t)
	bin := filepath.Join(t.TempDir(), "udpstats")
	build := exec.Command("go", "build", "-o", bin, "github.com/switchboard/switchboard/cmd/udpstats")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	group := testGroup(t)
	e := udpstats.NewEmitter(udpstats.Options{Group: group, Node: "n1", ZeroTTL: true, Logger: quiet()})
	e.Counter("sms.in").Add(3)
	e.Gauge("agents").Set(2)
	emitEvery(t, e, 100*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-json", "-once", "-group", group, "-iface", "lo", "-interval", "300ms")
	cmd.Env = append(os.Environ(), "UDPSTATS_TIMEOUT=5s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("udpstats: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	var objs []map[string]any
	for sc.Scan() {
		var o map[string]any
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		objs = append(objs, o)
	}
	if len(objs) != 1 {
		t.Fatalf("%d objects:\n%s", len(objs), out)
	}
	o := objs[0]
	m, _ := o["metrics"].(map[string]any)
	if o["node"] != "n1" || o["lost"] != 0.0 || o["seq"] == nil || o["time"] == nil || m["agents"] != 2.0 {
		t.Fatalf("object %v", o)
	}
	if _, ok := m["sms.in"]; !ok {
		t.Fatalf("no sms.in in %v", m)
	}
}

// A value far outside what a node sends (garbage on the group, a buggy
// sender) must not widen its column to hundreds of characters and wrap
// every row of the table: it is shown in exponent form.
func TestTableRenderHugeValue(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 10, 0, time.UTC)
	nodes := []udpstats.NodeState{{Node: "big", LastSeen: now, Interval: time.Second,
		Last: &udpstats.Report{Node: "big", Interval: time.Second,
			Metrics: map[string]float64{"sms.in": 1e308, "lat": 3e200, "g": -5e300},
			Types:   map[string]string{"sms.in": "c", "lat": "ms", "g": "g"}}}}
	var b bytes.Buffer
	(&Table{Columns: []string{"sms.in", "lat", "g"}}).Render(&b, nodes, now, udpstats.AggregatorStats{})
	for _, line := range strings.Split(b.String(), "\n") {
		if len(line) > 80 {
			t.Fatalf("line of %d characters:\n%s", len(line), b.String())
		}
	}
	if !strings.Contains(b.String(), "1e+308") {
		t.Fatalf("value not shown:\n%s", b.String())
	}
}

// Node names come from anyone who can send to the group: control
// characters in them (terminal escape sequences that clear the screen or
// set the window title) must not reach the operator's terminal, and a
// multi-byte name must not shift the columns.
func TestTableRenderSanitizesNodeNames(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 10, 0, time.UTC)
	rep := &udpstats.Report{Interval: time.Second, Metrics: map[string]float64{"g": 1}, Types: map[string]string{"g": "g"}}
	nodes := []udpstats.NodeState{
		{Node: "pwn\x1b]0;HACKED\x07\x1b[2J\u009b1m\x00", LastSeen: now, Interval: time.Second, Last: rep},
		{Node: "é", LastSeen: now, Interval: time.Second, Last: rep},
	}
	var b bytes.Buffer
	(&Table{Columns: []string{"g"}}).Render(&b, nodes, now, udpstats.AggregatorStats{})
	out := b.String()
	for _, r := range out {
		if r != '\n' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)) {
			t.Fatalf("control character %U in the table:\n%q", r, out)
		}
	}
	lines := strings.Split(out, "\n")
	width := utf8.RuneCountInString(lines[0])
	for _, l := range lines[1:4] {
		if n := utf8.RuneCountInString(l); n != width {
			t.Fatalf("row %q is %d characters wide, header %d:\n%s", l, n, width, out)
		}
	}
}
