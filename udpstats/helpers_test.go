package udpstats

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testEpoch = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: testEpoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testGroup returns the default group address on a port no other test uses:
// the kernel hands out a free UDP port on loopback and we reuse its number.
func testGroup(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	return net.JoinHostPort("239.255.77.77", strconv.Itoa(port))
}

// MulticastFix is what makes multicast work on lo where it does not by default.
const MulticastFix = "ip link set lo multicast on && ip route add 239.0.0.0/8 dev lo"

var (
	probeOnce sync.Once
	probeErr  error
)

// requireMulticastLo checks once that a datagram sent to a group on lo comes
// back. Without it the test is skipped, or fails under CI, naming the fix.
func requireMulticastLo(t *testing.T) {
	t.Helper()
	probeOnce.Do(func() { probeErr = probeMulticastLo(testGroup(t)) })
	if probeErr == nil {
		return
	}
	msg := "multicast on lo does not work on this machine (" + probeErr.Error() + "); as root run: " + MulticastFix
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func probeMulticastLo(group string) error {
	ga, err := groupAddr(group)
	if err != nil {
		return err
	}
	r, err := openReceiver(context.Background(), ga, "lo", 0)
	if err != nil {
		return err
	}
	defer r.Close()
	s, err := openSender("lo", 0)
	if err != nil {
		return err
	}
	defer s.Close()
	buf := make([]byte, 16)
	for try := 0; try < 3; try++ {
		if _, err := s.WriteToUDP([]byte("probe"), ga); err != nil {
			return err
		}
		_ = r.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, _, err := r.ReadFromUDP(buf); err == nil && string(buf[:n]) == "probe" {
			return nil
		}
	}
	return errNoEcho
}

var errNoEcho = &net.OpError{Op: "probe", Net: "udp4", Err: os.ErrDeadlineExceeded}
