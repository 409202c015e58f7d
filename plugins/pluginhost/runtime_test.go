package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// nodeInfo calls GetNode through the Runtime's client and returns the test
// plugin's capacity map, which tells about the process that answered.
func nodeInfo(t *testing.T, r *Runtime, node string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := r.Client().GetNode(ctx, &runtimev1.GetNodeRequest{Node: node})
	if err != nil {
		t.Fatalf("GetNode(%s): %v", node, err)
	}
	return n.GetCapacity()
}

func pidOf(t *testing.T, info map[string]string) int {
	t.Helper()
	pid, err := strconv.Atoi(info["test/pid"])
	if err != nil || pid <= 0 {
		t.Fatalf("plugin reported no pid: %v", info)
	}
	return pid
}

func nextEvent(t *testing.T, events <-chan Event, timeout time.Duration) Event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("event channel closed")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %v", timeout)
	}
	return Event{}
}

func TestStartAndCallThroughAutoMTLS(t *testing.T) {
	h, logs := newTestHost(t, Config{})
	spec := testSpec()
	r := startTestRuntime(t, h, spec)

	if d := r.Describe(); d.GetName() != "testplugin" || d.GetVersion() != "0.0.1" {
		t.Errorf("Describe() = %v", d)
	}
	if up, reason, msg := r.State(); !up || reason != ReasonRunning {
		t.Errorf("State() = %v, %q, %q; want up and %q", up, reason, msg, ReasonRunning)
	}
	if v := r.proc.cur.Load().version; v != sdk.RuntimeProtocolV1 {
		t.Errorf("negotiated protocol version %d, want %d", v, sdk.RuntimeProtocolV1)
	}

	info := nodeInfo(t, r, "node-b")
	if info["test/transport"] != "tls" {
		t.Errorf("the call reached the plugin over %q, want mutual TLS", info["test/transport"])
	}
	if info["test/configure-calls"] != "1" || info["test/config"] != string(spec.Config) {
		t.Errorf("plugin configured %s times with %q; want once with %q",
			info["test/configure-calls"], info["test/config"], spec.Config)
	}
	if info["pods"] != "110" {
		t.Errorf("capacity = %v", info)
	}
	if rc := r.proc.cur.Load().client.ReattachConfig(); rc == nil || rc.Pid != pidOf(t, info) {
		t.Errorf("go-plugin's pid %v differs from the pid that answered, %d", rc, pidOf(t, info))
	}

	_, err := r.Client().GetNode(t.Context(), &runtimev1.GetNodeRequest{Node: "node-z"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("GetNode of an unserved node: %v, want NotFound", err)
	}

	// The plugin's slog record arrives in the agent's log with its fields,
	// and so does what it printed to stdout.
	rec := waitForLog(t, logs, "test plugin configured")
	if rec["plugin"] != "mem" || rec["level"] != "INFO" || rec["calls"] != float64(1) {
		t.Errorf("forwarded plugin record = %v; want plugin=mem level=INFO calls=1", rec)
	}
	if nodes, _ := rec["nodes"].([]any); len(nodes) != 2 || nodes[0] != "node-a" {
		t.Errorf("forwarded plugin record lost its nodes field: %v", rec)
	}
	if rec := waitForLog(t, logs, "testplugin: configure done"); rec["plugin"] != "mem" || rec["stream"] != "stdout" {
		t.Errorf("forwarded stdout line = %v; want plugin=mem stream=stdout", rec)
	}
}

// waitForLog waits for the agent's log to hold a record with message msg:
// the plugin's output reaches it asynchronously.
func waitForLog(t *testing.T, logs *logBuffer, msg string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, rec := range logs.records(t) {
			if rec["msg"] == msg {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record %q in the agent's log", msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChecksumPinAccepted(t *testing.T) {
	sum, err := fileChecksum(filepath.Join(testPluginDir, testPluginName))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHost(t, Config{Checksums: map[string]string{testPluginName: sum}})
	r := startTestRuntime(t, h, testSpec())
	if info := nodeInfo(t, r, "node-a"); info["test/configure-calls"] != "1" {
		t.Errorf("pinned plugin not configured: %v", info)
	}
}

func TestChecksumPinRefused(t *testing.T) {
	path := filepath.Join(testPluginDir, testPluginName)
	actual, err := fileChecksum(path)
	if err != nil {
		t.Fatal(err)
	}
	expected := "sha256:" + strings.Repeat("ab", 32)
	h, _ := newTestHost(t, Config{Checksums: map[string]string{testPluginName: expected}})

	_, err = h.StartRuntime(t.Context(), testSpec())
	if err == nil {
		t.Fatal("a plugin whose checksum differs from its pin was started")
	}
	var ce *ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("error is not a *ChecksumError: %v", err)
	}
	for _, want := range []string{testPluginName, expected, actual, "checksum mismatch"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestNewRefusesMalformedChecksum(t *testing.T) {
	for _, sum := range []string{"abc", "sha256:xyz", "sha1:" + strings.Repeat("a", 40), "sha256:" + strings.Repeat("a", 62)} {
		_, err := New(Config{Checksums: map[string]string{"p": sum}}, nil)
		if err == nil || !strings.Contains(err.Error(), `plugin "p"`) {
			t.Errorf("New with checksum %q: %v, want an error naming the plugin", sum, err)
		}
	}
}

func TestPluginNotFound(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	h, _ := newTestHost(t, Config{Dirs: []string{a, b}})
	spec := testSpec()
	spec.Plugin = "x"
	_, err := h.StartRuntime(t.Context(), spec)
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("error is not a *NotFoundError: %v", err)
	}
	if want := fmt.Sprintf("plugin \"x\" not found in [%s %s]", a, b); nf.Error() != want {
		t.Errorf("error = %q, want %q", nf.Error(), want)
	}
}

func TestFindTakesFirstMatch(t *testing.T) {
	empty, first := t.TempDir(), t.TempDir()
	if err := os.Symlink(filepath.Join(testPluginDir, testPluginName), filepath.Join(first, testPluginName)); err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHost(t, Config{Dirs: []string{empty, first, testPluginDir}})
	path, err := h.find(testPluginName)
	if err != nil || path != filepath.Join(first, testPluginName) {
		t.Errorf("find = %q, %v; want the binary in %s", path, err, first)
	}

	if err := os.WriteFile(filepath.Join(empty, "plain"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.find("plain"); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Errorf("find of a file that is not executable: %v", err)
	}
	if _, err := h.find("../" + testPluginName); err == nil {
		t.Error("find accepted a name with a directory")
	}
}

func TestPluginExitingAtStart(t *testing.T) {
	t.Setenv("TESTPLUGIN_EXIT_AT_START", "3")
	h, _ := newTestHost(t, Config{})
	_, err := h.StartRuntime(t.Context(), testSpec())
	if err == nil {
		t.Fatal("a plugin that exits at start was reported started")
	}
	for _, want := range []string{"start runtime plugin mem", "exiting at start as asked", "exit status 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestConfigureFailure(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	spec := testSpec()
	spec.Config = []byte(`{"failConfigure":"cluster unreachable"}`)
	_, err := h.StartRuntime(t.Context(), spec)
	if err == nil {
		t.Fatal("a plugin whose Configure failed was reported started")
	}
	for _, want := range []string{"configure:", "cluster unreachable", "[error] refusing configuration"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestVersionNegotiationRefusesUnknownVersion(t *testing.T) {
	t.Setenv("TESTPLUGIN_PROTOCOL", "99")
	h, _ := newTestHost(t, Config{})
	_, err := h.StartRuntime(t.Context(), testSpec())
	if err == nil {
		t.Fatal("a plugin speaking only protocol version 99 was started")
	}
	for _, want := range []string{"incompatible API version", "Plugin version: 99", "[1]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestRestartAfterKill(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	spec := testSpec()
	r := startTestRuntime(t, h, spec)
	events, unsubscribe := r.Subscribe()
	defer unsubscribe()
	if ev := nextEvent(t, events, time.Second); ev.Kind != Started {
		t.Fatalf("first event = %v, want the current state, Started", ev)
	}

	oldPID := pidOf(t, nodeInfo(t, r, "node-a"))
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	down := nextEvent(t, events, 30*time.Second)
	if down.Kind != Down || down.Reason != ReasonExited || !strings.Contains(down.Message, "signal: killed") {
		t.Errorf("after kill -9: %v %s %q; want Down %s saying signal: killed", down.Kind, down.Reason, down.Message, ReasonExited)
	}
	started := nextEvent(t, events, time.Minute)
	if started.Kind != Started || started.Describe.GetName() != "testplugin" {
		t.Fatalf("after Down: %v %s %q; want Started", started.Kind, started.Reason, started.Message)
	}

	info := nodeInfo(t, r, "node-a")
	if pid := pidOf(t, info); pid == oldPID {
		t.Errorf("the call after the restart reached pid %d, the killed process", pid)
	}
	if info["test/configure-calls"] != "1" || info["test/config"] != string(spec.Config) {
		t.Errorf("the new process was configured %s times with %q; want once with %q",
			info["test/configure-calls"], info["test/config"], spec.Config)
	}
	if up, reason, _ := r.State(); !up || reason != ReasonRunning {
		t.Errorf("State() after restart = %v, %s", up, reason)
	}
}

func TestRestartWhenUnhealthy(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	h.timing.healthInterval = 200 * time.Millisecond
	h.timing.healthTimeout = 500 * time.Millisecond
	r := startTestRuntime(t, h, testSpec())
	events, unsubscribe := r.Subscribe()
	defer unsubscribe()
	nextEvent(t, events, time.Second)

	// A stopped process keeps its socket open but answers nothing: hung.
	oldPID := pidOf(t, nodeInfo(t, r, "node-a"))
	if err := syscall.Kill(oldPID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	down := nextEvent(t, events, 30*time.Second)
	if down.Kind != Down || down.Reason != ReasonUnhealthy {
		t.Errorf("after SIGSTOP: %v %s %q; want Down %s", down.Kind, down.Reason, down.Message, ReasonUnhealthy)
	}
	if started := nextEvent(t, events, time.Minute); started.Kind != Started {
		t.Fatalf("after Down: %v %s %q; want Started", started.Kind, started.Reason, started.Message)
	}
	if pid := pidOf(t, nodeInfo(t, r, "node-a")); pid == oldPID {
		t.Errorf("the hung process %d still answers", pid)
	}
	if err := syscall.Kill(oldPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the hung process %d was not killed: %v", oldPID, err)
	}
}

// A plugin that answers its health checks but hangs a call: the call fails
// once the spec's CallTimeout has passed, naming the plugin and the call, and
// the process is neither restarted nor held up. A caller's own deadline is
// kept.
func TestCallTimeoutBoundsHungCalls(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	spec := testSpec()
	spec.CallTimeout = 300 * time.Millisecond
	r := startTestRuntime(t, h, spec)
	pid := pidOf(t, nodeInfo(t, r, "node-a"))

	_, err := r.Client().PullImage(t.Context(), &runtimev1.PullImageRequest{Node: "node-a", Image: "hang"})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "plugin mem did not answer PullImage within 300ms") {
		t.Errorf("hung call: %v; want DeadlineExceeded naming the plugin, the call and the timeout", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err = r.Client().PullImage(ctx, &runtimev1.PullImageRequest{Node: "node-a", Image: "hang"})
	if took := time.Since(began); status.Code(err) != codes.DeadlineExceeded || took < time.Second {
		t.Errorf("a call with its own deadline of 1.5s: %v after %s; want DeadlineExceeded at its own deadline", err, took)
	}

	if got := pidOf(t, nodeInfo(t, r, "node-a")); got != pid {
		t.Errorf("the plugin was restarted (pid %d, was %d) for a hung call", got, pid)
	}
}

func TestStopWhenContextEnds(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := h.StartRuntime(ctx, testSpec())
	if err != nil {
		t.Fatal(err)
	}
	pid := pidOf(t, nodeInfo(t, r, "node-a"))
	events, unsubscribe := r.Subscribe()
	defer unsubscribe()
	nextEvent(t, events, time.Second)

	cancel()
	select {
	case <-r.Done():
	case <-time.After(time.Minute):
		t.Fatal("runtime did not stop within a minute of its context ending")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("plugin process %d still exists after stop: %v", pid, err)
	}
	if ev := nextEvent(t, events, time.Second); ev.Kind != Down || ev.Reason != ReasonStopped {
		t.Errorf("last event = %v %s, want Down %s", ev.Kind, ev.Reason, ReasonStopped)
	}
	if _, ok := <-events; ok {
		t.Error("event channel still open after stop")
	}
	if up, reason, _ := r.State(); up || reason != ReasonStopped {
		t.Errorf("State() after stop = %v, %s", up, reason)
	}
	_, err = r.Client().Describe(context.Background(), &runtimev1.DescribeRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "plugin mem is stopped") {
		t.Errorf("call after stop: %v, want Unavailable saying it is stopped", err)
	}
}

func TestClientUnavailableWhileNoProcess(t *testing.T) {
	p := &process{spec: RuntimeSpec{Name: "x"}}
	r := &Runtime{proc: p, client: runtimev1.NewRuntimeClient(p.conn())}
	_, err := r.Client().Describe(context.Background(), &runtimev1.DescribeRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "plugin x is restarting") {
		t.Errorf("unary call with no process: %v", err)
	}
	_, err = r.Client().WatchContainers(context.Background(), &runtimev1.WatchContainersRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("stream with no process: %v", err)
	}
}

// Reconfigure configures the running process with the new nodes, and
// every process started after it.
func TestReconfigureReachesTheRunningAndTheNextProcess(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	r := startTestRuntime(t, h, testSpec())
	events, unsubscribe := r.Subscribe()
	defer unsubscribe()
	nextEvent(t, events, time.Second) // Started

	settings := map[string]map[string][]byte{"node-c": {"kubeconfig": []byte("x")}}
	if err := r.Reconfigure(context.Background(), []string{"node-a", "node-c"}, settings); err != nil {
		t.Fatal(err)
	}
	info := nodeInfo(t, r, "node-c")
	if info["test/configure-calls"] != "2" {
		t.Errorf("the running process was configured %s times, want twice", info["test/configure-calls"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.Client().GetNode(ctx, &runtimev1.GetNodeRequest{Node: "node-b"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetNode(node-b) after it was dropped = %v, want NotFound", err)
	}

	if err := syscall.Kill(pidOf(t, info), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for ev := nextEvent(t, events, 30*time.Second); ev.Kind != Started; ev = nextEvent(t, events, time.Minute) {
	}
	if info := nodeInfo(t, r, "node-c"); info["test/configure-calls"] != "1" {
		t.Errorf("the restarted process was configured %s times, want once, with the new nodes", info["test/configure-calls"])
	}
}
