package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
)

// CPUUsage is the CPU time one process used during the send phase, as a
// percentage of one core (200 = two cores busy the whole time) and per
// inbound message delivered to an agent in that phase.
type CPUUsage struct {
	PID     int     `json:"pid"` // 0 = sbload itself
	Command string  `json:"command"`
	Percent float64 `json:"percent"`
	Seconds float64 `json:"cpu_s"` // user+system CPU time over the send phase
	// MicrosPerDelivered is Seconds in µs divided by the inbound messages
	// first delivered to an agent during the send phase; 0 when none was.
	MicrosPerDelivered float64 `json:"us_per_delivered,omitempty"`
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// procCPU is one process's command name and user+system CPU time in
// clock ticks.
type procCPU struct {
	command string
	ticks   int64
}

// CPUTime returns the user+system CPU time process pid has used so far
// (Linux /proc/PID/stat; pid 0 = this process).
func CPUTime(pid int) (time.Duration, error) {
	c, err := readProcCPU(pid)
	return time.Duration(c.ticks) * (time.Second / clockTicks), err
}

// readProcCPU reads /proc/PID/stat (pid 0 = this process).
func readProcCPU(pid int) (procCPU, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return procCPU{}, err
	}
	return parseProcStat(data)
}

// parseProcStat parses a /proc/PID/stat line: "pid (comm) state ppid ...",
// where comm may itself hold spaces and parentheses, so the fields are
// counted from the last ')'. utime and stime are fields 14 and 15.
func parseProcStat(data []byte) (procCPU, error) {
	open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return procCPU{}, errors.New("loadgen: /proc stat: no command name")
	}
	fields := bytes.Fields(data[end+1:])
	if len(fields) < 13 {
		return procCPU{}, errors.New("loadgen: /proc stat: too few fields")
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime: fields 14 and 15 overall
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil || n < 0 || n > 1<<60 { // the sum of two stays positive
			return procCPU{}, fmt.Errorf("loadgen: /proc stat: bad CPU time %q", f)
		}
		ticks += n
	}
	return procCPU{command: string(data[open+1 : end]), ticks: ticks}, nil
}

// cpuMeter measures the CPU time of processes over an interval.
type cpuMeter struct {
	pids  []int // 0 = this process
	start []procCPU
	at    time.Time
}

func startCPU(pids []int) *cpuMeter {
	m := &cpuMeter{pids: append([]int{0}, pids...), at: time.Now()}
	m.start = m.read()
	return m
}

// read reads each process's CPU time, once per process: a PID that is
// this process (or listed twice) gets the same reading, so it cannot
// differ by a clock tick that fell between two reads. A process that is
// gone reads as zero.
func (m *cpuMeter) read() []procCPU {
	self := os.Getpid()
	seen := map[int]procCPU{}
	out := make([]procCPU, len(m.pids))
	for i, pid := range m.pids {
		if pid == self {
			pid = 0
		}
		c, ok := seen[pid]
		if !ok {
			c, _ = readProcCPU(pid)
			seen[pid] = c
		}
		out[i] = c
	}
	return out
}

// stop returns each process's usage since start; processes that could
// not be read at either end are left out.
func (m *cpuMeter) stop() []CPUUsage {
	elapsed := time.Since(m.at)
	end := m.read()
	var out []CPUUsage
	for i, pid := range m.pids {
		c := end[i]
		if c.command == "" || m.start[i].command == "" || elapsed <= 0 {
			continue
		}
		name := c.command
		if pid == 0 {
			name = "sbload"
		}
		seconds := float64(c.ticks-m.start[i].ticks) / clockTicks
		out = append(out, CPUUsage{PID: pid, Command: name, Percent: round1(100 * seconds / elapsed.Seconds()), Seconds: seconds})
	}
	return out
}

// perDelivered sets each process's CPU time per delivered message and
// returns the total over the -cpu-pid processes (sbload's own row left
// out, a PID listed twice counted once): the node CPU per delivered
// message when the PIDs are the nodes. It returns 0 when delivered is 0.
func perDelivered(usage []CPUUsage, delivered int64) float64 {
	if delivered <= 0 {
		return 0
	}
	var total float64
	counted := map[int]bool{}
	for i := range usage {
		u := &usage[i]
		u.MicrosPerDelivered = round1(u.Seconds * 1e6 / float64(delivered))
		if u.PID != 0 && !counted[u.PID] {
			counted[u.PID] = true
			total += u.Seconds
		}
	}
	return round1(total * 1e6 / float64(delivered))
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }
