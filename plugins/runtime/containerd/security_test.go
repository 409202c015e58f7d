package containerd

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/snapshots"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

func i64(v int64) *int64 { return &v }

// TestLimitsAndSecurityReachTheProcess runs a container with resources and
// a security context and reads back, from inside, what the kernel applies.
func TestLimitsAndSecurityReachTheProcess(t *testing.T) {
	h := newHarness(t)
	pod := newPod("limited")
	h.runSandbox(pod, false)
	script := `id -u; id -g; id -G
cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares
touch /written 2>/dev/null && echo writable || echo read-only
grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status`
	_, err := h.rt.StartContainer(h.ctx(), &runtimev1.StartContainerRequest{
		Node: testNode, Pod: pod,
		Container: &runtimev1.ContainerSpec{
			Name: "app", Image: testImage, Command: []string{"sh", "-c", script},
			Resources: &runtimev1.Resources{CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitBytes: 64 << 20},
			Security: &runtimev1.SecurityContext{
				RunAsUser: i64(1000), RunAsGroup: i64(3000), SupplementalGroups: []int64{4000},
				ReadOnlyRootFilesystem: true, NoNewPrivileges: true,
				CapabilitiesDrop: []string{"ALL"}, CapabilitiesAdd: []string{"chown"},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := h.waitExited(pod, "app", 0); st.GetExitCode() != 0 {
		t.Fatalf("exit %d", st.GetExitCode())
	}
	out, err := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1})
	if err != nil {
		t.Fatal(err)
	}
	// CAP_CHOWN alone is bit 0.
	want := "1000\n3000\n3000 4000\n67108864\n50000\n100000\n512\nread-only\nCapBnd:\t0000000000000001\nNoNewPrivs:\t1\n"
	if out != want {
		t.Errorf("container saw:\n%s\nwant:\n%s", out, want)
	}
}

func TestPrivilegedNeedsTheNodesConsent(t *testing.T) {
	h := newHarness(t)
	pod := newPod("privileged")
	h.runSandbox(pod, false)
	req := &runtimev1.StartContainerRequest{
		Node: testNode, Pod: pod,
		Container: &runtimev1.ContainerSpec{
			Name: "app", Image: testImage, Command: []string{"sh", "-c", "grep ^CapEff /proc/self/status; ls /dev | grep -c .; grep ^Seccomp: /proc/self/status"},
			// A privileged container runs without a seccomp filter, whatever it asks.
			Security: &runtimev1.SecurityContext{Privileged: true, Seccomp: runtimev1.Seccomp_SECCOMP_RUNTIME_DEFAULT},
		},
	}
	_, err := h.rt.StartContainer(h.ctx(), req)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "privileged containers are not allowed on this node") {
		t.Fatalf("privileged start on a node that forbids it: %v", err)
	}
	if h.status(pod, "app", 0) != nil {
		t.Error("the refused container was recorded")
	}

	var cfg map[string]any
	if err := json.Unmarshal(h.config(), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["allowPrivileged"] = true
	allowing, _ := json.Marshal(cfg)
	if _, err := h.rt.Configure(h.ctx(), &runtimev1.ConfigureRequest{Config: allowing, Nodes: []string{testNode}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.rt.StartContainer(h.ctx(), req); err != nil {
		t.Fatalf("privileged start on a node that allows it: %v", err)
	}
	if st := h.waitExited(pod, "app", 0); st.GetExitCode() != 0 {
		t.Fatalf("exit %d", st.GetExitCode())
	}
	out, _ := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1})
	// CAP_SYS_ADMIN (bit 21) is in no default set.
	capEff, _, _ := strings.Cut(strings.TrimPrefix(out, "CapEff:\t"), "\n")
	if mask, err := strconv.ParseUint(capEff, 16, 64); err != nil || mask&(1<<21) == 0 {
		t.Errorf("privileged container's capabilities: %q", out)
	}
	if !strings.Contains(out, "Seccomp:\t0\n") {
		t.Errorf("a privileged container runs under a seccomp filter: %q", out)
	}
}

func TestRunAsNonRootRefusesRoot(t *testing.T) {
	h := newHarness(t)
	pod := newPod("nonroot")
	h.runSandbox(pod, false)
	start := func(user *int64) error {
		_, err := h.rt.StartContainer(h.ctx(), &runtimev1.StartContainerRequest{
			Node: testNode, Pod: pod,
			Container: &runtimev1.ContainerSpec{Name: "app", Image: testImage, Command: []string{"true"},
				Security: &runtimev1.SecurityContext{RunAsNonRoot: true, RunAsUser: user}},
		})
		return err
	}
	// The image runs as root.
	err := start(nil)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "runAsNonRoot") {
		t.Fatalf("root image with runAsNonRoot: %v", err)
	}
	id := containerID(pod.GetUid(), "app", 0)
	if err := h.ctr.SnapshotService(DefaultSnapshotter).Walk(h.ctx(), func(_ context.Context, info snapshots.Info) error {
		if info.Name == id {
			t.Errorf("the refused container's snapshot %s is left", id)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := start(i64(0)); status.Code(err) != codes.PermissionDenied {
		t.Errorf("runAsUser 0 with runAsNonRoot: %v", err)
	}
	if err := start(i64(65534)); err != nil {
		t.Errorf("runAsUser 65534 with runAsNonRoot: %v", err)
	}
}
