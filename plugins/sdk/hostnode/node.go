// Package hostnode reports the machine a runtime plugin runs on as the
// node GetNode answers, for plugins that run pods on their own host.
package hostnode

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// DefaultMaxPods is the kubelet's default number of pods a node runs.
const DefaultMaxPods = 110

// Node reports the host: its CPUs and memory as capacity and allocatable,
// maxPods pods (DefaultMaxPods when zero), its operating system,
// architecture, kernel and distribution, and ready. runtimeVersion names
// the runtime, "runc://1.1.5" say.
func Node(runtimeVersion string, maxPods int) (*runtimev1.Node, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return nil, fmt.Errorf("read the host's memory: %w", err)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return nil, fmt.Errorf("read the host's kernel: %w", err)
	}
	if maxPods <= 0 {
		maxPods = DefaultMaxPods
	}
	capacity := map[string]string{
		"cpu":    strconv.Itoa(runtime.NumCPU()),
		"memory": strconv.FormatUint(si.Totalram*uint64(si.Unit), 10),
		"pods":   strconv.Itoa(maxPods),
	}
	return &runtimev1.Node{
		Capacity: capacity, Allocatable: capacity,
		OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
		KernelVersion: unix.ByteSliceToString(uts.Release[:]), OsImage: osImage(),
		ContainerRuntimeVersion: runtimeVersion, Ready: true,
	}, nil
}

// osImage is the distribution's PRETTY_NAME in /etc/os-release.
func osImage() string {
	data, _ := os.ReadFile("/etc/os-release")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
