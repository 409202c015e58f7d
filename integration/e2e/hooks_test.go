package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// hookServer records the paths of the requests hooks send it, on loopback,
// where the agent and host-network pods reach it.
type hookServer struct {
	*httptest.Server
	port int
	mu   sync.Mutex
	hits []string
}

func newHookServer(t *testing.T) *hookServer {
	t.Helper()
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hits = append(h.hits, r.URL.Path)
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	h.port = h.Listener.Addr().(*net.TCPAddr).Port
	return h
}

func (h *hookServer) hit(path string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.hits, path)
}

func execHook(script string) *corev1.LifecycleHandler {
	return &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", script}}}
}

func (h *hookServer) httpHook(path string) *corev1.LifecycleHandler {
	return &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Port: intstr.FromInt(h.port), Path: path}}
}

// TestLifecycleHooks: postStart runs right after the start, and a failing
// one kills the container, which restarts as its policy says; preStop runs
// before a deleted pod's containers are stopped, and a failing one does not
// keep the pod from going. Both kinds run as exec in the container and as
// HTTP GET from the node.
func TestLifecycleHooks(t *testing.T) {
	ns := namespace(t)
	server := newHookServer(t)
	withHooks := func(name string, policy corev1.RestartPolicy, hostNetwork bool, lc *corev1.Lifecycle) {
		// A shell that stops at once on SIGTERM, and says so by its exit code.
		p := busyboxPod(name, "trap 'exit 3' TERM; sleep 3600 & wait", policy)
		p.Spec.HostNetwork = hostNetwork
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](10)
		p.Spec.Containers[0].Lifecycle = lc
		createPod(t, ns, p)
	}
	wget := func(path string) string {
		return fmt.Sprintf("wget -q -O /dev/null http://127.0.0.1:%d%s", server.port, path)
	}
	withHooks("poststart", corev1.RestartPolicyAlways, false, &corev1.Lifecycle{PostStart: execHook("echo hooked > /tmp/poststart")})
	withHooks("poststart-http", corev1.RestartPolicyAlways, false, &corev1.Lifecycle{PostStart: server.httpHook("/poststart-http")})
	withHooks("poststart-fails", corev1.RestartPolicyAlways, false, &corev1.Lifecycle{PostStart: execHook("echo no good; exit 7")})
	withHooks("poststart-fails-never", corev1.RestartPolicyNever, false, &corev1.Lifecycle{PostStart: execHook("exit 7")})
	withHooks("prestop", corev1.RestartPolicyAlways, true, &corev1.Lifecycle{PreStop: execHook(wget("/prestop-exec"))})
	withHooks("prestop-http", corev1.RestartPolicyAlways, false, &corev1.Lifecycle{PreStop: server.httpHook("/prestop-http")})
	withHooks("prestop-fails", corev1.RestartPolicyAlways, false, &corev1.Lifecycle{PreStop: execHook("exit 1")})

	waitPod(t, ns, "poststart", time.Minute, "Running", phaseIs(corev1.PodRunning))
	if out, err := kubectl(t, "-n", ns, "exec", "poststart", "--", "cat", "/tmp/poststart"); err != nil || out != "hooked\n" {
		t.Errorf("what the postStart hook wrote: %q, %v", out, err)
	}
	waitPod(t, ns, "poststart-http", time.Minute, "Running", phaseIs(corev1.PodRunning))
	if !server.hit("/poststart-http") {
		t.Error("the postStart HTTP hook was not called before the pod ran")
	}

	const main = "spec.containers{main}"
	p := waitPod(t, ns, "poststart-fails", 2*time.Minute, "restarted", func(p *corev1.Pod) bool {
		return p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	if events := waitEvents(t, ns, "poststart-fails", "FailedPostStartHook", main); events[0].Message != "PostStartHook failed" {
		t.Errorf("FailedPostStartHook event: %q", events[0].Message)
	}
	if events := waitEvents(t, ns, "poststart-fails", "Killing", main); !hasEvent(events, "FailedPostStartHook", false) {
		t.Errorf("Killing events: %s", describeEvents(events))
	}
	if cs := p.Status.ContainerStatuses[0]; cs.LastTerminationState.Terminated == nil {
		t.Errorf("killed container's last state: %+v", cs.LastTerminationState)
	}
	// Stopped with SIGTERM, and not restarted.
	p = waitPod(t, ns, "poststart-fails-never", time.Minute, "Failed", phaseIs(corev1.PodFailed))
	if cs := p.Status.ContainerStatuses[0]; cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 3 || cs.RestartCount != 0 {
		t.Errorf("with restartPolicy Never, the killed container: %+v", cs)
	}

	for _, name := range []string{"prestop", "prestop-http", "prestop-fails"} {
		waitPod(t, ns, name, time.Minute, "Running", phaseIs(corev1.PodRunning))
		if err := env.Client().CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"prestop", "prestop-http", "prestop-fails"} {
		waitGone(t, ns, name, time.Minute)
	}
	for _, path := range []string{"/prestop-exec", "/prestop-http"} {
		if !server.hit(path) {
			t.Errorf("the preStop hook did not call %s before the pod went", path)
		}
	}
	if events := waitEvents(t, ns, "prestop-fails", "FailedPreStopHook", main); events[0].Message != "PreStopHook failed" {
		t.Errorf("FailedPreStopHook event: %q", events[0].Message)
	}
}
