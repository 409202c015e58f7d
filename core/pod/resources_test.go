package pod

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestContainerResourcesAsTheKubelet(t *testing.T) {
	list := func(kv ...string) corev1.ResourceList {
		l := corev1.ResourceList{}
		for i := 0; i+1 < len(kv); i += 2 {
			l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	cases := []struct {
		name                 string
		requests, limits     corev1.ResourceList
		shares, quota, perio int64
		memory               int64
	}{
		{name: "best effort", shares: 2},
		{name: "request only", requests: list("cpu", "250m"), shares: 256},
		{name: "tiny request", requests: list("cpu", "1m"), shares: 2},
		{name: "limit only", limits: list("cpu", "500m", "memory", "32Mi"), shares: 512, quota: 50000, perio: 100000, memory: 32 << 20},
		{name: "request and limit", requests: list("cpu", "1"), limits: list("cpu", "2", "memory", "1Gi"), shares: 1024, quota: 200000, perio: 100000, memory: 1 << 30},
		{name: "tiny limit", limits: list("cpu", "1m"), shares: 2, quota: 1000, perio: 100000},
		{name: "huge request", requests: list("cpu", "1000"), shares: 262144},
		{name: "memory request only", requests: list("memory", "64Mi"), shares: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := containerResources(&corev1.Container{Resources: corev1.ResourceRequirements{Requests: c.requests, Limits: c.limits}})
			if r.CpuShares != c.shares || r.CpuQuota != c.quota || r.CpuPeriod != c.perio || r.MemoryLimitBytes != c.memory {
				t.Errorf("got shares=%d quota=%d period=%d memory=%d, want %d %d %d %d",
					r.CpuShares, r.CpuQuota, r.CpuPeriod, r.MemoryLimitBytes, c.shares, c.quota, c.perio, c.memory)
			}
		})
	}
}
