package pod

import (
	corev1 "k8s.io/api/core/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// The kubelet's CPU arithmetic (pkg/kubelet/cm, MilliCPUToShares and
// MilliCPUToQuota), so that a container gets the same cgroup here as under
// a kubelet.
const (
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	milliCPUToCPU = 1000
	// cfsPeriod is the CFS period the kubelet uses, in microseconds.
	cfsPeriod = 100000
	// minQuota is the smallest CFS quota the kernel accepts, in microseconds.
	minQuota = 1000
)

// containerResources computes the cgroup settings of a container from its
// requests and limits. A container without a CPU request gets the minimum
// weight, as a BestEffort container does under the kubelet.
func containerResources(ctr *corev1.Container) *runtimev1.Resources {
	r := &runtimev1.Resources{}
	cpuRequest, cpuLimit := ctr.Resources.Requests.Cpu(), ctr.Resources.Limits.Cpu()
	if cpuRequest.IsZero() && !cpuLimit.IsZero() {
		// The API server defaults the request to the limit; a pod that
		// reached us without that still weighs what it may use.
		r.CpuShares = milliCPUToShares(cpuLimit.MilliValue())
	} else {
		r.CpuShares = milliCPUToShares(cpuRequest.MilliValue())
	}
	if q := milliCPUToQuota(cpuLimit.MilliValue()); q > 0 {
		r.CpuQuota, r.CpuPeriod = q, cfsPeriod
	}
	if mem := ctr.Resources.Limits.Memory(); !mem.IsZero() {
		r.MemoryLimitBytes = mem.Value()
	}
	return r
}

// milliCPUToShares is the cpu.shares of a CPU request in millicores.
func milliCPUToShares(milliCPU int64) int64 {
	if milliCPU <= 0 {
		return minShares
	}
	shares := milliCPU * sharesPerCPU / milliCPUToCPU
	return max(minShares, min(shares, maxShares))
}

// milliCPUToQuota is the CFS quota per cfsPeriod of a CPU limit in
// millicores; 0 means no limit.
func milliCPUToQuota(milliCPU int64) int64 {
	if milliCPU <= 0 {
		return 0
	}
	return max(milliCPU*cfsPeriod/milliCPUToCPU, minQuota)
}
