package podproxy

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// While the backend cannot be observed a running pod keeps its last
// status, not ready, with a condition saying why; when the backend answers
// again the condition goes and the backend's status is written as it is.
func TestUnreachableBackendKeepsTheLastStatusWithAReason(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.create(testPod("web"))
	running := h.waitForPhase("web", corev1.PodRunning)
	if c := findCondition(running.Status.Conditions, corev1.PodReady); c == nil || c.Status != corev1.ConditionTrue {
		t.Fatalf("the running pod is not ready before the outage: %+v", running.Status.Conditions)
	}

	const reason, message = "MemberUnreachable", "cannot reach the member API server at https://127.0.0.1:1"
	h.proxy.BackendReachable(false, reason, message)
	h.waitFor("the pod marked unreachable", func() (bool, string) {
		p := h.pod("web")
		c := findCondition(p.Status.Conditions, ConditionBackendReachable)
		ready := findCondition(p.Status.Conditions, corev1.PodReady)
		ok := c != nil && c.Status == corev1.ConditionFalse && c.Reason == reason && c.Message == message &&
			ready != nil && ready.Status == corev1.ConditionFalse
		return ok, fmt.Sprintf("%+v", p.Status.Conditions)
	})
	p := h.pod("web")
	if p.Status.Phase != corev1.PodRunning || p.Status.PodIP != running.Status.PodIP ||
		len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("the pod did not keep its last status: %+v", p.Status)
	}
	if c := h.backend.Calls(string(p.UID)); c.Creates != 1 || len(c.DeleteGraces) != 0 {
		t.Errorf("calls %+v during the outage, want the one creation only", c)
	}

	h.proxy.BackendReachable(true, "MemberReady", "")
	h.waitFor("the mark gone", func() (bool, string) {
		p := h.pod("web")
		ready := findCondition(p.Status.Conditions, corev1.PodReady)
		ok := findCondition(p.Status.Conditions, ConditionBackendReachable) == nil && ready != nil && ready.Status == corev1.ConditionTrue
		return ok, fmt.Sprintf("%+v", p.Status.Conditions)
	})
}
