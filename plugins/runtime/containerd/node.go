package containerd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/resource"
)

// versionTimeout bounds the readiness probe of containerd in GetNode.
const versionTimeout = 3 * time.Second

// GetNode reports the host's capacity and system information, and whether
// containerd answers.
func (b *Backend) GetNode(ctx context.Context, req *runtimev1.GetNodeRequest) (*runtimev1.Node, error) {
	s, err := b.sessionFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	return s.getNode(s.withNamespace(ctx)), nil
}

func (s *session) getNode(ctx context.Context) *runtimev1.Node {
	capacity := map[string]string{
		"cpu":  strconv.Itoa(runtime.NumCPU()),
		"pods": strconv.Itoa(s.cfg.MaxPods),
	}
	if kib, err := memTotalKiB(); err == nil {
		capacity["memory"] = strconv.FormatUint(kib, 10) + "Ki"
	} else {
		s.logger.Warn("read memory capacity", "err", err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(s.cfg.StateDir, &fs); err == nil {
		capacity["ephemeral-storage"] = strconv.FormatUint(fs.Blocks*uint64(fs.Bsize), 10)
	} else {
		s.logger.Warn("read ephemeral-storage capacity", "stateDir", s.cfg.StateDir, "err", err)
	}
	allocatable := allocatable(capacity, s.cfg.reserved)

	n := &runtimev1.Node{
		Capacity:        capacity,
		Allocatable:     allocatable,
		Addresses:       []*runtimev1.NodeAddress{{Type: "InternalIP", Address: s.cfg.NodeAddress}},
		OperatingSystem: runtime.GOOS,
		Architecture:    runtime.GOARCH,
		KernelVersion:   kernelRelease(),
		OsImage:         osImage(),
	}
	if h, err := os.Hostname(); err == nil {
		n.Addresses = append(n.Addresses, &runtimev1.NodeAddress{Type: "Hostname", Address: h})
	}

	vctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	v, err := s.client.Version(vctx)
	if err != nil {
		n.Ready = false
		n.Reason = "ContainerdUnreachable"
		n.Message = fmt.Sprintf("containerd at %s does not answer: %v", s.cfg.Address, err)
		return n
	}
	n.ContainerRuntimeVersion = "containerd://" + strings.TrimPrefix(v.Version, "v")
	n.Ready = true
	n.Reason = "ContainerdReady"
	n.Message = "containerd " + v.Version + " is serving"
	return n
}

// allocatable is capacity minus what is reserved for the host, never below
// zero.
func allocatable(capacity map[string]string, reserved map[string]resource.Quantity) map[string]string {
	out := make(map[string]string, len(capacity))
	for name, v := range capacity {
		r, ok := reserved[name]
		if !ok {
			out[name] = v
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			out[name] = v
			continue
		}
		q.Sub(r)
		if q.Sign() < 0 {
			q = resource.Quantity{Format: q.Format}
		}
		out[name] = q.String()
	}
	return out
}

// memTotalKiB reads MemTotal from /proc/meminfo.
func memTotalKiB() (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			return strconv.ParseUint(fields[1], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no MemTotal in /proc/meminfo")
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// osImage is PRETTY_NAME from os-release, as the kubelet reports it.
func osImage() string {
	for _, path := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				if u, err := strconv.Unquote(v); err == nil {
					return u
				}
				return strings.Trim(v, `"'`)
			}
		}
	}
	return "Unknown"
}
