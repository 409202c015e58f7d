package containerd

import (
	"os"
	"sync"

	"github.com/containerd/containerd/v2/pkg/oci"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupMount shows the container its own cgroups at /sys/fs/cgroup,
// read-only (writable when privileged), as containerd's CRI does.
var cgroupMount = specs.Mount{
	Destination: "/sys/fs/cgroup",
	Type:        "cgroup",
	Source:      "cgroup",
	Options:     []string{"nosuid", "noexec", "nodev", "relatime", "ro"},
}

// resourceOpts puts the container's cgroup settings into its spec. The
// memory limit includes swap, as the kubelet's default (no swap) has it: a
// container over its limit is OOM-killed rather than swapped out.
func resourceOpts(r *runtimev1.Resources) []oci.SpecOpts {
	if r == nil {
		return nil
	}
	var opts []oci.SpecOpts
	if r.GetCpuShares() > 0 {
		opts = append(opts, oci.WithCPUShares(uint64(r.GetCpuShares())))
	}
	if r.GetCpuQuota() > 0 && r.GetCpuPeriod() > 0 {
		opts = append(opts, oci.WithCPUCFS(r.GetCpuQuota(), uint64(r.GetCpuPeriod())))
	}
	if limit := r.GetMemoryLimitBytes(); limit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(limit)))
		if swapAccounted() {
			opts = append(opts, oci.WithMemorySwap(limit))
		}
	}
	return opts
}

// swapAccounted says whether the host's cgroup v1 memory controller
// accounts swap (memory.memsw.*): runc fails to set a swap limit without it,
// and then memory without swap is all the host can limit anyway.
var swapAccounted = sync.OnceValue(func() bool {
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
})
