package loadgen

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCPUPerDelivered: the report divides the -cpu-pid processes' CPU time
// over the send phase by the messages first delivered in that phase (not
// those delivered during the drain), per process and in total, in the text
// summary and in -json.
func TestCPUPerDelivered(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := &Runner{led: newLedger(), start: t0, sendEnd: t0.Add(10 * time.Second)}
	for seq, at := range map[int64]time.Duration{
		1: time.Second, 2: 2 * time.Second, 3: 10 * time.Second, // in the send phase (its end included)
		4: 11 * time.Second, // during the drain
	} {
		r.led.sent(seq, "SM"+string(rune('0'+seq)), "+1555000000"+string(rune('0'+seq)), t0)
		r.led.answered(seq, true, t0)
		r.led.seen(seq, "a", true, t0.Add(at))
	}
	r.led.sent(5, "SM5", "+15550000005", t0) // never delivered
	rep := &Report{CPU: []CPUUsage{
		{PID: 0, Command: "sbload", Percent: 3, Seconds: 0.3},
		{PID: 41, Command: "switchboard", Percent: 1.5, Seconds: 0.15},
		{PID: 42, Command: "switchboard", Percent: 0.6, Seconds: 0.06},
		{PID: 41, Command: "switchboard", Percent: 1.5, Seconds: 0.15}, // listed twice: counted once
	}}
	r.fill(rep, true, false)
	if rep.Inbound.Delivered != 4 || rep.Inbound.DeliveredInSend != 3 {
		t.Fatalf("delivered %d, in the send phase %d; want 4 and 3", rep.Inbound.Delivered, rep.Inbound.DeliveredInSend)
	}
	wantEach := []float64{100000, 50000, 20000, 50000}
	for i, u := range rep.CPU {
		if u.MicrosPerDelivered != wantEach[i] {
			t.Errorf("%s (%d): %v µs/delivered, want %v", u.Command, u.PID, u.MicrosPerDelivered, wantEach[i])
		}
	}
	if rep.CPUPerDelivered != 70000 {
		t.Errorf("CPUPerDelivered = %v µs, want 70000 (0.21 s of the two nodes over 3 messages)", rep.CPUPerDelivered)
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"switchboard 2 % (50000.0 µs/delivered)", "node CPU per delivered message", "70000.0 µs (-cpu-pid processes, 3 messages delivered in the send phase)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got struct {
		PerDelivered float64 `json:"cpu_us_per_delivered"`
		Inbound      struct {
			InSend int64 `json:"delivered_in_send"`
		} `json:"inbound"`
		CPU []struct {
			Seconds      float64 `json:"cpu_s"`
			PerDelivered float64 `json:"us_per_delivered"`
		} `json:"cpu"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.PerDelivered != 70000 || got.Inbound.InSend != 3 || len(got.CPU) != 4 || got.CPU[1].Seconds != 0.15 || got.CPU[1].PerDelivered != 50000 {
		t.Errorf("JSON = %+v\n%s", got, js.String())
	}

	if strings.Contains(text.String(), "overstates") {
		t.Errorf("3 of 4 delivered in the send phase is not a lag worth a note:\n%s", text.String())
	}
	rep.Inbound.Acked = 10 // 3 of 10 delivered while the CPU was measured
	text.Reset()
	rep.WriteText(&text)
	if want := "only 3 of 10 acknowledged: deliveries lagged, so this overstates the cost per message"; !strings.Contains(text.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, text.String())
	}

	// Nothing delivered in the send phase: no figure rather than infinity.
	if v := perDelivered(rep.CPU, 0); v != 0 {
		t.Errorf("perDelivered(…, 0) = %v", v)
	}
}
