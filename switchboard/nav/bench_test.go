package nav

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/internal/httpbody"
)

// batches builds POST /nav bodies of size events each: users out of
// nUsers view random products of the sample catalog (some repeat views).
func batches(n, size, nUsers int) [][]byte {
	rng := rand.New(rand.NewPCG(7, 7))
	out := make([][]byte, n)
	for i := range out {
		var b bytes.Buffer
		b.WriteByte('[')
		for j := range size {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"user":"u-%d","product":"%d","type":"PRODUCT"}`, rng.IntN(nUsers), rng.IntN(22))
		}
		b.WriteByte(']')
		out[i] = b.Bytes()
	}
	return out
}

// BenchmarkHTTPIngest: POST /nav batches of 1000 events over loopback HTTP,
// through the in-process bus, until the counters have applied every event.
// events/s is the end-to-end rate.
func BenchmarkHTTPIngest(b *testing.B) {
	o := testOptions(newClock())
	o.Now = time.Now
	o.Window = 5 * time.Minute
	s := startServer(b, o)
	bodies := batches(64, 1000, 10000)
	client := &http.Client{}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		resp, err := client.Post(s.url+"/nav", "application/json", bytes.NewReader(bodies[i%len(bodies)]))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	want := uint64(b.N) * 1000
	for s.Counters().Counted+s.Counters().Unknown < want {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(want)/el.Seconds(), "events/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(want), "ns/event")
}

// BenchmarkHTTPDecodeOnly is the baseline of the same HTTP path: POST the
// same batches to a handler that reads and decodes them and does nothing
// else (no bus, no counters).
func BenchmarkHTTPDecodeOnly(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /nav", func(w http.ResponseWriter, r *http.Request) {
		body, ok := httpbody.Read(w, r, 1<<20)
		if !ok {
			return
		}
		if _, err := DecodeEvents(body, 10000); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	srv := startPlain(b, mux)
	bodies := batches(64, 1000, 10000)
	client := &http.Client{}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		resp, err := client.Post(srv+"/nav", "application/json", bytes.NewReader(bodies[i%len(bodies)]))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	el := time.Since(start)
	b.ReportMetric(float64(b.N)*1000/el.Seconds(), "events/s")
}

// BenchmarkApply is the counters alone: one view applied under the lock.
func BenchmarkApply(b *testing.B) {
	s, _ := newService(b, testOptions(newClock()), &recorder{})
	rng := rand.New(rand.NewPCG(1, 1))
	evs := make([]Event, 1<<16)
	for i := range evs {
		evs[i] = Event{User: fmt.Sprintf("u-%d", rng.IntN(10000)), Product: fmt.Sprint(rng.IntN(22)), Type: TypeProduct, Node: "n1"}
	}
	b.ResetTimer()
	for i := range b.N {
		s.apply(evs[i%len(evs)])
	}
}

// BenchmarkMemoryPerUser reports the heap held per tracked user with 10
// distinct viewed products each (user ids like "u-123456").
func BenchmarkMemoryPerUser(b *testing.B) {
	const users, per = 50000, 10
	for range b.N {
		b.StopTimer()
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		cv := newCoview(100)
		b.StartTimer()
		for u := range users {
			id := fmt.Sprintf("u-%06d", u)
			for p := range per {
				cv.view(id, fmt.Sprint((u+p)%22), "Cat", "", 1, nil)
			}
		}
		b.StopTimer()
		clear(cv.dirtyUsers) // flushed in real life
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/users, "bytes/user")
		runtime.KeepAlive(cv)
	}
}
