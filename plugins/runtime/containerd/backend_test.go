package containerd

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

const (
	stateRunning = runtimev1.ContainerState_CONTAINER_STATE_RUNNING
	stateExited  = runtimev1.ContainerState_CONTAINER_STATE_EXITED
)

func TestEchoHelloLogs(t *testing.T) {
	h := newHarness(t)
	pod := newPod("echo")
	h.runSandbox(pod, false)
	h.startContainer(pod, "app", 0, "sh", "-c", "echo hello; echo oops >&2")
	st := h.waitExited(pod, "app", 0)
	if st.GetExitCode() != 0 || st.GetReason() != ReasonCompleted {
		t.Errorf("exit = %d %q, want 0 Completed", st.GetExitCode(), st.GetReason())
	}
	if st.GetImage() != testImage || !strings.HasPrefix(st.GetImageRef(), "docker.io/fedlet/busybox@sha256:") {
		t.Errorf("image = %q, ref = %q", st.GetImage(), st.GetImageRef())
	}
	if st.GetStartedAtUnixNano() == 0 || st.GetFinishedAtUnixNano() < st.GetStartedAtUnixNano() {
		t.Errorf("started %d, finished %d", st.GetStartedAtUnixNano(), st.GetFinishedAtUnixNano())
	}

	// The file is in the kubelet's CRI format.
	data, err := os.ReadFile(filepath.Join(h.stateDir, "logs", pod.GetUid(), "app", "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^(\S+) (stdout|stderr) (F|P) (.*)$`)
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a CRI log line: %q", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Errorf("time of %q: %v", l, err)
		}
		seen[m[2]+" "+m[3]+" "+m[4]] = true
	}
	if !seen["stdout F hello"] || !seen["stderr F oops"] {
		t.Errorf("log file lacks the output:\n%s", data)
	}

	out, err := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1})
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 2 || !strings.Contains(out, "hello\n") || !strings.Contains(out, "oops\n") {
		t.Errorf("logs = %q", out)
	}
	out, err = h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: 1, Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\S+Z (hello|oops)\n$`).MatchString(out) {
		t.Errorf("logs with tail 1 and timestamps = %q", out)
	}
	if _, err := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", Previous: true}); status.Code(err) != codes.NotFound {
		t.Errorf("previous logs of a first attempt: %v, want NotFound", err)
	}
}

func TestExitCodeSurvivesTaskAndPlugin(t *testing.T) {
	h := newHarness(t)
	pod := newPod("exit3")
	h.runSandbox(pod, false)
	started := h.startContainer(pod, "app", 0, "sh", "-c", "exit 3")
	st := h.waitExited(pod, "app", 0)
	if st.GetExitCode() != 3 || st.GetReason() != ReasonError {
		t.Errorf("exit = %d %q, want 3 Error", st.GetExitCode(), st.GetReason())
	}
	// The exit is recorded on the container and its task deleted.
	deadline := time.Now().Add(30 * time.Second)
	for h.tasks()[started.GetId()] {
		if time.Now().After(deadline) {
			t.Fatal("the exited task was never deleted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.restartPlugin()
	again := h.status(pod, "app", 0)
	if again.GetState() != stateExited || again.GetExitCode() != 3 || again.GetFinishedAtUnixNano() != st.GetFinishedAtUnixNano() {
		t.Errorf("after restart: %v, want the same exit as %v", again, st)
	}
}

func TestStartContainerIsIdempotentAndAdoptedAfterRestart(t *testing.T) {
	h := newHarness(t)
	pod := newPod("ticker")
	h.runSandbox(pod, false)
	tick := []string{"sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done"}
	first := h.startContainer(pod, "app", 0, tick...)
	second := h.startContainer(pod, "app", 0, tick...)
	if first.GetId() != second.GetId() || second.GetState() != stateRunning {
		t.Fatalf("second start: %v, first: %v", second, first)
	}
	if n := len(h.tasks()); n != 1 {
		t.Fatalf("%d tasks after two starts, want 1", n)
	}

	// The log driver belongs to the shim: logs grow while the plugin is down.
	logFile := filepath.Join(h.stateDir, "logs", pod.GetUid(), "app", "0.log")
	h.stopPlugin()
	before := fileSize(t, logFile)
	deadline := time.Now().Add(30 * time.Second)
	for fileSize(t, logFile) <= before {
		if time.Now().After(deadline) {
			t.Fatal("the log stopped growing while the plugin was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.startPlugin()
	st := h.status(pod, "app", 0)
	if st.GetState() != stateRunning || st.GetId() != first.GetId() || st.GetStartedAtUnixNano() != first.GetStartedAtUnixNano() {
		t.Fatalf("after restart: %v", st)
	}
	third := h.startContainer(pod, "app", 0, tick...)
	if third.GetId() != first.GetId() || third.GetState() != stateRunning || len(h.tasks()) != 1 {
		t.Fatalf("start after restart: %v with %d tasks", third, len(h.tasks()))
	}
}

func TestStartCutShortIsFinished(t *testing.T) {
	h := newHarness(t)
	pod := newPod("cut")
	h.runSandbox(pod, false)
	req := &runtimev1.StartContainerRequest{
		Node: testNode, Pod: pod,
		Container: &runtimev1.ContainerSpec{Name: "app", Image: testImage, Command: []string{"sleep", "300"}},
	}
	// What a plugin that crashed between creating the task and starting it
	// leaves behind.
	h.backend.mu.RLock()
	s := h.backend.session
	h.backend.mu.RUnlock()
	ctx := s.withNamespace(h.ctx())
	sb, err := s.client.ContainerService().Get(ctx, sandboxID(pod.GetUid()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.createContainer(ctx, req, sb, containerID(pod.GetUid(), "app", 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewTask(ctx, cio.NullIO); err != nil {
		t.Fatal(err)
	}
	if st := h.status(pod, "app", 0); st.GetState() != runtimev1.ContainerState_CONTAINER_STATE_CREATED {
		t.Fatalf("before start: %v", st)
	}

	h.restartPlugin()
	st, err := h.rt.StartContainer(h.ctx(), req)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetState() != stateRunning || st.GetId() != c.ID() || len(h.tasks()) != 1 {
		t.Fatalf("after start: %v with %d tasks", st, len(h.tasks()))
	}
}

// StartContainer finds out only when creating the container that the way is
// not clear: a snapshot left by a crash, or image layers removed since the
// image was pulled.
func TestStartClearsStaleSnapshotAndUnpacksAgain(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx()
	sn := h.ctr.SnapshotService(DefaultSnapshotter)
	var layers []string
	if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindCommitted {
			layers = append(layers, info.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("busybox has %d layers here, the test expects 1", len(layers))
	}
	if err := sn.Remove(ctx, layers[0]); err != nil {
		t.Fatal(err)
	}
	unpacked := newPod("unpacked")
	h.runSandbox(unpacked, false)
	if st := h.startContainer(unpacked, "app", 0, "sleep", "300"); st.GetState() != stateRunning {
		t.Errorf("start with the image's layers removed: %v", st)
	}

	stale := newPod("stale")
	h.runSandbox(stale, false)
	if _, err := sn.Prepare(ctx, containerID(stale.GetUid(), "app", 0), ""); err != nil {
		t.Fatal(err)
	}
	if st := h.startContainer(stale, "app", 0, "sleep", "300"); st.GetState() != stateRunning {
		t.Errorf("start over a stale snapshot: %v", st)
	}
}

func TestStopContainerGrace(t *testing.T) {
	h := newHarness(t)
	pod := newPod("stopper")
	h.runSandbox(pod, false)
	// One stops on SIGTERM; the other ignores it (a PID 1 without a handler
	// does) and needs SIGKILL.
	h.startContainer(pod, "polite", 0, "sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo ready; sleep 300 & wait")
	h.startContainer(pod, "stubborn", 0, "sleep", "300")
	waitLog(t, h, pod, "polite", "ready")

	st, err := h.rt.StopContainer(h.ctx(), &runtimev1.StopContainerRequest{Node: testNode, PodUid: pod.GetUid(), Name: "polite", GracePeriodSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetState() != stateExited || st.GetExitCode() != 0 || st.GetReason() != ReasonCompleted {
		t.Errorf("polite: %v, want exit 0 after SIGTERM", st)
	}
	if out, _ := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "polite", TailLines: -1}); !strings.Contains(out, "got TERM") {
		t.Errorf("polite container's logs %q do not show the SIGTERM", out)
	}

	st, err = h.rt.StopContainer(h.ctx(), &runtimev1.StopContainerRequest{Node: testNode, PodUid: pod.GetUid(), Name: "stubborn", GracePeriodSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetState() != stateExited || st.GetExitCode() != 137 {
		t.Errorf("stubborn: %v, want exit 137 after SIGKILL", st)
	}
	// Stopping a stopped container reports it again.
	again, err := h.rt.StopContainer(h.ctx(), &runtimev1.StopContainerRequest{Node: testNode, PodUid: pod.GetUid(), Name: "stubborn", GracePeriodSeconds: 1})
	if err != nil || again.GetExitCode() != 137 {
		t.Errorf("second stop: %v, %v", again, err)
	}
	if _, err := h.rt.StopContainer(h.ctx(), &runtimev1.StopContainerRequest{Node: testNode, PodUid: pod.GetUid(), Name: "nothere"}); status.Code(err) != codes.NotFound {
		t.Errorf("stop of a missing container: %v, want NotFound", err)
	}
}

func waitLog(t *testing.T, h *harness, pod *runtimev1.PodRef, name, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: name, TailLines: -1})
		if strings.Contains(out, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s never showed %q; got %q", name, want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRemoveSandboxLeavesNothing(t *testing.T) {
	h := newHarness(t)
	pod := newPod("doomed")
	sb := h.runSandbox(pod, false)
	h.startContainer(pod, "a", 0, "sleep", "300")
	h.startContainer(pod, "b", 0, "sh", "-c", "echo bye")
	h.waitExited(pod, "b", 0)
	if _, err := os.Stat(sb.GetNetnsPath()); err != nil {
		t.Fatalf("netns: %v", err)
	}

	for i := 0; i < 2; i++ { // the second call finds nothing and succeeds
		if _, err := h.rt.RemoveSandbox(h.ctx(), &runtimev1.RemoveSandboxRequest{Node: testNode, PodUid: pod.GetUid()}); err != nil {
			t.Fatalf("remove sandbox (call %d): %v", i+1, err)
		}
	}
	ctx := h.ctx()
	if ctrs, err := h.ctr.Containers(ctx, labelFilter(LabelPodUID, pod.GetUid())); err != nil || len(ctrs) != 0 {
		t.Errorf("containers left: %d (%v)", len(ctrs), err)
	}
	if n := len(h.tasks()); n != 0 {
		t.Errorf("%d tasks left", n)
	}
	var snaps []string
	h.ctr.SnapshotService(DefaultSnapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive {
			snaps = append(snaps, info.Name)
		}
		return nil
	})
	if len(snaps) != 0 {
		t.Errorf("active snapshots left: %v", snaps)
	}
	for _, p := range []string{sb.GetNetnsPath(), filepath.Join(h.stateDir, "logs", pod.GetUid()), filepath.Join(h.stateDir, "pods", pod.GetUid())} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left (%v)", p, err)
		}
	}
	resp, err := h.rt.ListSandboxes(h.ctx(), &runtimev1.ListSandboxesRequest{Node: testNode})
	if err != nil || len(resp.GetSandboxes()) != 0 {
		t.Errorf("sandboxes left: %v (%v)", resp.GetSandboxes(), err)
	}
}

func TestWatchContainers(t *testing.T) {
	h := newHarness(t)
	pod := newPod("watched")
	h.runSandbox(pod, false)
	stream, err := h.rt.WatchContainers(h.ctx(), &runtimev1.WatchContainersRequest{Node: testNode})
	if err != nil {
		t.Fatal(err)
	}
	// The watch is registered once the stream is open; a status through it
	// proves it.
	time.Sleep(200 * time.Millisecond)
	h.startContainer(pod, "app", 0, "sh", "-c", "exit 7")
	for {
		st, err := stream.Recv()
		if err != nil {
			t.Fatalf("watch ended: %v", err)
		}
		if st.GetPod().GetUid() != pod.GetUid() || st.GetName() != "app" {
			t.Fatalf("status of another container: %v", st)
		}
		if st.GetState() == stateExited {
			if st.GetExitCode() != 7 || st.GetReason() != ReasonError {
				t.Errorf("exit status: %v", st)
			}
			return
		}
	}
}

func TestFollowLogs(t *testing.T) {
	h := newHarness(t)
	pod := newPod("follow")
	h.runSandbox(pod, false)
	h.startContainer(pod, "app", 0, "sh", "-c", "echo one; sleep 1; echo two")
	out, err := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", Follow: true, TailLines: -1})
	if err != nil {
		t.Fatal(err)
	}
	if out != "one\ntwo\n" {
		t.Errorf("followed logs = %q, want both lines, ending when the container exits", out)
	}
	out, err = h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1, LimitBytes: 5})
	if err != nil || out != "one\nt" {
		t.Errorf("limited logs = %q, %v", out, err)
	}
}

func TestRestartAttemptsAndPreviousLogs(t *testing.T) {
	h := newHarness(t)
	pod := newPod("restarts")
	h.runSandbox(pod, false)
	for attempt := uint32(0); attempt < 3; attempt++ {
		h.startContainer(pod, "app", attempt, "sh", "-c", fmt.Sprintf("echo attempt-%d; exit 1", attempt))
		h.waitExited(pod, "app", attempt)
	}
	// Each attempt has its own log; previous is the one before the newest.
	if _, err := h.rt.RemoveContainer(h.ctx(), &runtimev1.RemoveContainerRequest{Node: testNode, PodUid: pod.GetUid(), Name: "app", KeepAttempt: 1}); err != nil {
		t.Fatal(err)
	}
	if st := h.status(pod, "app", 0); st != nil {
		t.Errorf("attempt 0 was not removed: %v", st)
	}
	if h.status(pod, "app", 1) == nil || h.status(pod, "app", 2) == nil {
		t.Error("attempts 1 and 2 should remain")
	}
	if _, err := os.Stat(filepath.Join(h.stateDir, "logs", pod.GetUid(), "app", "0.log")); !os.IsNotExist(err) {
		t.Errorf("log of attempt 0 remains: %v", err)
	}
	out, err := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", Previous: true, TailLines: -1})
	if err != nil || out != "attempt-1\n" {
		t.Errorf("previous logs = %q, %v", out, err)
	}
}

func TestStartErrorIsAnExit(t *testing.T) {
	h := newHarness(t)
	pod := newPod("broken")
	h.runSandbox(pod, false)
	st := h.startContainer(pod, "app", 0, "/no/such/binary")
	if st.GetState() != stateExited || st.GetReason() != ReasonStartError || st.GetExitCode() != 128 || st.GetMessage() == "" || st.GetStartedAtUnixNano() != 0 {
		t.Errorf("status = %v, want an exit with StartError that never started", st)
	}
	if again := h.startContainer(pod, "app", 0, "/no/such/binary"); again.GetReason() != ReasonStartError {
		t.Errorf("repeated start: %v", again)
	}
}

func TestPodNetworkAndHostname(t *testing.T) {
	h := newHarness(t)
	pod := newPod("netpod")
	sb := h.runSandbox(pod, false)
	if !strings.HasPrefix(sb.GetNetnsPath(), "/run/netns/fedlet-") {
		t.Fatalf("netns path %q", sb.GetNetnsPath())
	}
	ns, err := netns.GetFromPath(sb.GetNetnsPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo in the pod's namespace is not up: %v %v", lo, err)
	}

	h.startContainer(pod, "app", 0, "sh", "-c", "hostname; cat /proc/net/dev; cat /etc/hosts")
	h.waitExited(pod, "app", 0)
	out, _ := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1})
	if !strings.HasPrefix(out, "netpod\n") || !strings.Contains(out, "lo:") || strings.Count(out, ":") > 6+strings.Count(out, "localhost") {
		t.Errorf("pod sees:\n%s", out)
	}
	hostIfaces, _ := netlink.LinkList()
	for _, l := range hostIfaces {
		if name := l.Attrs().Name; name != "lo" && strings.Contains(out, " "+name+":") {
			t.Errorf("pod sees host interface %s", name)
		}
	}

	hostPod := newPod("hostpod")
	if sb := h.runSandbox(hostPod, true); sb.GetNetnsPath() != "" || !sb.GetHostNetwork() {
		t.Errorf("host-network sandbox: %v", sb)
	}
	h.startContainer(hostPod, "app", 0, "hostname")
	h.waitExited(hostPod, "app", 0)
	out, _ = h.logs(&runtimev1.ContainerLogsRequest{PodUid: hostPod.GetUid(), Container: "app", TailLines: -1})
	if host, _ := os.Hostname(); out != host+"\n" {
		t.Errorf("host-network pod's hostname = %q, want %q", out, host)
	}
}

func TestGetNode(t *testing.T) {
	h := newHarness(t)
	n, err := h.rt.GetNode(h.ctx(), &runtimev1.GetNodeRequest{Node: testNode})
	if err != nil {
		t.Fatal(err)
	}
	if !n.GetReady() || !strings.HasPrefix(n.GetContainerRuntimeVersion(), "containerd://2.") {
		t.Errorf("node: ready %v, runtime %q, %s", n.GetReady(), n.GetContainerRuntimeVersion(), n.GetMessage())
	}
	for _, r := range []string{"cpu", "memory", "pods", "ephemeral-storage"} {
		if n.GetCapacity()[r] == "" || n.GetAllocatable()[r] == "" {
			t.Errorf("no %s in capacity %v", r, n.GetCapacity())
		}
	}
	if n.GetCapacity()["pods"] != "110" || n.GetOperatingSystem() != "linux" || n.GetKernelVersion() == "" || n.GetOsImage() == "" {
		t.Errorf("node: %v", n)
	}
	if _, err := h.rt.GetNode(h.ctx(), &runtimev1.GetNodeRequest{Node: "other"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetNode of a node not served: %v", err)
	}

	// A containerd that does not answer makes the node not ready.
	b := New(Options{})
	defer b.Close()
	if _, err := b.Configure(h.ctx(), &runtimev1.ConfigureRequest{Config: []byte(`{"address":"` + t.TempDir() + `/none.sock","stateDir":"` + t.TempDir() + `"}`), Nodes: []string{"n"}}); err != nil {
		t.Fatal(err)
	}
	n, err = b.GetNode(h.ctx(), &runtimev1.GetNodeRequest{Node: "n"})
	if err != nil || n.GetReady() || n.GetReason() != "ContainerdUnreachable" {
		t.Errorf("unreachable containerd: %v, %v", n, err)
	}
}

func TestConfigureRejectsUnknownField(t *testing.T) {
	b := New(Options{})
	_, err := b.Configure(t.Context(), &runtimev1.ConfigureRequest{Config: []byte(`{"snapshoter":"native"}`)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `"snapshoter"`) {
		t.Errorf("Configure = %v, want InvalidArgument naming the field", err)
	}
	if d, err := b.Describe(t.Context(), &runtimev1.DescribeRequest{}); err != nil || d.GetName() != "containerd" || d.GetVersion() == "" {
		t.Errorf("Describe = %v, %v", d, err)
	}
	if _, err := b.ListSandboxes(t.Context(), &runtimev1.ListSandboxesRequest{Node: "n"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("call before Configure: %v, want FailedPrecondition", err)
	}
}

func TestInvalidArgumentsNameTheField(t *testing.T) {
	h := newHarness(t)
	_, err := h.rt.StartContainer(h.ctx(), &runtimev1.StartContainerRequest{Node: testNode, Pod: newPod("x"), Container: &runtimev1.ContainerSpec{Name: "app"}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "container.image") {
		t.Errorf("StartContainer without image: %v", err)
	}
	_, err = h.rt.StartContainer(h.ctx(), &runtimev1.StartContainerRequest{Node: testNode, Pod: newPod("x"), Container: &runtimev1.ContainerSpec{Name: "app", Image: testImage}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("StartContainer without sandbox: %v", err)
	}
	_, err = h.rt.RunSandbox(h.ctx(), &runtimev1.RunSandboxRequest{Node: testNode, Pod: &runtimev1.PodRef{Uid: "../etc", Name: "x"}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "pod.uid") {
		t.Errorf("RunSandbox with a bad uid: %v", err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestTTYOutputIsLogged(t *testing.T) {
	h := newHarness(t)
	pod := newPod("tty")
	h.runSandbox(pod, false)
	if _, err := h.rt.StartContainer(h.ctx(), &runtimev1.StartContainerRequest{
		Node: testNode, Pod: pod,
		Container: &runtimev1.ContainerSpec{Name: "app", Image: testImage, Command: []string{"sh", "-c", "test -t 1 && echo on a tty"}, Tty: true},
	}); err != nil {
		t.Fatal(err)
	}
	if st := h.waitExited(pod, "app", 0); st.GetExitCode() != 0 {
		t.Errorf("status %v", st)
	}
	out, err := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1, Follow: true})
	if err != nil || strings.TrimRight(out, "\r\n") != "on a tty" {
		t.Errorf("logs = %q, %v", out, err)
	}
}
