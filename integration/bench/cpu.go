package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times.
const clockTicks = 100

// cpuParts are the processes whose CPU time a churn run accounts for, by
// the name the kernel gives them (comm); shims and runc come and go, and
// are in the machine's total only.
var cpuParts = []struct{ label, comm string }{
	{"agent", "fedlet"},
	{"runtime plugin", "fedlet-runtime-"},
	{"network plugin", "fedlet-network-"},
	{"kube-apiserver", "kube-apiserver"},
	{"kine", "kine"},
	{"containerd", "containerd"},
}

// cpuSample is the machine's busy CPU time and that of each part, in ticks.
type cpuSample struct {
	total int64
	parts map[string]int64
}

func sampleCPU() (cpuSample, error) {
	s := cpuSample{parts: map[string]int64{}}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	// cpu  user nice system idle iowait irq softirq steal ...: busy is all
	// but idle and iowait.
	fields := strings.Fields(strings.SplitN(string(stat), "\n", 2)[0])
	for i, f := range fields[1:] {
		if v, err := strconv.ParseInt(f, 10, 64); err == nil && i != 3 && i != 4 {
			s.total += v
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return s, err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: utime and stime are the 14th and 15th
		// fields, the 12th and 13th after the comm's closing parenthesis.
		line := string(data)
		open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
		if open < 0 || end < open {
			continue
		}
		comm, rest := line[open+1:end], strings.Fields(line[end+1:])
		if len(rest) < 13 {
			continue
		}
		for _, p := range cpuParts {
			if comm == p.comm || (strings.HasSuffix(p.comm, "-") && strings.HasPrefix(comm, p.comm)) {
				utime, _ := strconv.ParseInt(rest[11], 10, 64)
				stime, _ := strconv.ParseInt(rest[12], 10, 64)
				s.parts[p.label] += utime + stime
				break
			}
		}
	}
	return s, nil
}

// cpuPerCycle says how much CPU time each cycle of a run cost, the whole
// machine's and each part's, from samples taken before and after it.
func cpuPerCycle(before, after cpuSample, cycles int) string {
	perCycle := func(ticks int64) float64 { return float64(ticks) * 1000 / clockTicks / float64(cycles) }
	var b strings.Builder
	fmt.Fprintf(&b, "%.0f ms of CPU per cycle", perCycle(after.total-before.total))
	var parts []string
	for _, p := range cpuParts {
		if d := after.parts[p.label] - before.parts[p.label]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", p.label, perCycle(d)))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	return b.String()
}
