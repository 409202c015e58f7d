package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedlet/fedlet/core/config"
)

func resources(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

// TestResourcesBecomeCgroupLimits reads the container's cgroup v1 files from
// inside it: the kubelet's shares, quota and memory limit.
func TestResourcesBecomeCgroupLimits(t *testing.T) {
	ns := namespace(t)
	pod := busyboxPod("limited", "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares", corev1.RestartPolicyNever)
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: resources("cpu", "250m", "memory", "32Mi"),
		Limits:   resources("cpu", "500m", "memory", "64Mi"),
	}
	createPod(t, ns, pod)
	waitPod(t, ns, "limited", time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
	out, err := kubectl(t, "-n", ns, "logs", "limited")
	if err != nil {
		t.Fatal(err)
	}
	if want := "67108864\n50000\n100000\n256\n"; out != want {
		t.Errorf("cgroup limits seen from inside = %q, want %q (memory, quota, period, shares)", out, want)
	}
}

func TestOverMemoryLimitIsOOMKilled(t *testing.T) {
	ns := namespace(t)
	// tail keeps the whole newline-free input in memory.
	pod := busyboxPod("hungry", "head -c 200m /dev/zero | tail", corev1.RestartPolicyNever)
	pod.Spec.Containers[0].Resources.Limits = resources("memory", "32Mi")
	createPod(t, ns, pod)
	p := waitPod(t, ns, "hungry", 2*time.Minute, "OOMKilled", func(p *corev1.Pod) bool {
		if p.Status.Phase != corev1.PodFailed {
			return false
		}
		term := p.Status.ContainerStatuses[0].State.Terminated
		return term != nil && term.Reason == "OOMKilled"
	})
	if term := p.Status.ContainerStatuses[0].State.Terminated; term.ExitCode != 137 {
		t.Errorf("exit code %d, want 137", term.ExitCode)
	}
}

// TestNodeReservationAndPrivilegedOptIn runs a second agent whose node
// reserves resources for the system and allows privileged containers.
func TestNodeReservationAndPrivilegedOptIn(t *testing.T) {
	cfg := loadClusterAgentConfig(t)
	var rt map[string]any
	if err := json.Unmarshal(cfg.Runtimes[0].Config, &rt); err != nil {
		t.Fatal(err)
	}
	rt["stateDir"] = t.TempDir()
	rt["systemReserved"] = map[string]string{"cpu": "500m", "memory": "256Mi"}
	rt["allowPrivileged"] = true
	raw, err := json.Marshal(rt)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Runtimes = []config.Runtime{{Name: "reserved", Plugin: cfg.Runtimes[0].Plugin, Config: raw}}
	cfg.Nodes = []config.Node{{Name: "e2e-reserved", Runtime: "reserved"}}
	stop := startAgent(t, writeConfig(t, cfg))
	defer stop()

	var node *corev1.Node
	waitFor(t, time.Minute, "e2e-reserved registered", func() (bool, string) {
		n, err := env.Client().CoreV1().Nodes().Get(context.Background(), "e2e-reserved", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		node = n
		return len(n.Status.Allocatable) > 0, "no allocatable yet"
	})
	for name, reserved := range map[corev1.ResourceName]string{corev1.ResourceCPU: "500m", corev1.ResourceMemory: "256Mi"} {
		capacity := node.Status.Capacity[name]
		want := capacity.DeepCopy()
		want.Sub(resource.MustParse(reserved))
		if got := node.Status.Allocatable[name]; got.Cmp(want) != 0 {
			t.Errorf("allocatable %s = %s, want capacity %s minus %s", name, got.String(), capacity.String(), reserved)
		}
	}

	ns := namespace(t)
	// CAP_SYS_ADMIN is bit 21: in no default set.
	pod := busyboxPod("privileged", "grep ^CapEff /proc/self/status", corev1.RestartPolicyNever)
	pod.Spec.NodeName = "e2e-reserved"
	yes := true
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	createPod(t, ns, pod)
	waitPod(t, ns, "privileged", time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
	out, err := kubectl(t, "-n", ns, "logs", "privileged")
	if err != nil {
		t.Fatal(err)
	}
	if !hasCapability(strings.TrimSpace(strings.TrimPrefix(out, "CapEff:")), 21) {
		t.Errorf("privileged container's capabilities: %q, want CAP_SYS_ADMIN among them", out)
	}
	if err := env.Client().CoreV1().Pods(ns).Delete(context.Background(), "privileged", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ns, "privileged", time.Minute)
}
