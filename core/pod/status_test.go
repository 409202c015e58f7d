package pod

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

func running() corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func exited(code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
}

func waiting() corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
}

func TestPhase(t *testing.T) {
	cases := []struct {
		name     string
		policy   corev1.RestartPolicy
		statuses []corev1.ContainerStatus
		want     corev1.PodPhase
	}{
		{"not started", corev1.RestartPolicyAlways, []corev1.ContainerStatus{waiting()}, corev1.PodPending},
		{"one of two started", corev1.RestartPolicyAlways, []corev1.ContainerStatus{running(), waiting()}, corev1.PodPending},
		{"running", corev1.RestartPolicyAlways, []corev1.ContainerStatus{running(), running()}, corev1.PodRunning},
		{"never, success", corev1.RestartPolicyNever, []corev1.ContainerStatus{exited(0), exited(0)}, corev1.PodSucceeded},
		{"never, one failed", corev1.RestartPolicyNever, []corev1.ContainerStatus{exited(0), exited(2)}, corev1.PodFailed},
		{"never, one still running", corev1.RestartPolicyNever, []corev1.ContainerStatus{running(), exited(2)}, corev1.PodRunning},
		{"on failure, failed restarts", corev1.RestartPolicyOnFailure, []corev1.ContainerStatus{exited(1)}, corev1.PodRunning},
		{"on failure, success", corev1.RestartPolicyOnFailure, []corev1.ContainerStatus{exited(0)}, corev1.PodSucceeded},
		{"always, exited restarts", corev1.RestartPolicyAlways, []corev1.ContainerStatus{exited(0)}, corev1.PodRunning},
	}
	for _, tc := range cases {
		pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: tc.policy}}
		if got := phase(pod, tc.statuses); got != tc.want {
			t.Errorf("%s: phase = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestContainerStatusFromRuntime(t *testing.T) {
	c := &Controller{waiting: map[types.UID]map[string]waitReason{}, hostIP: "192.0.2.7"}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
	pod.UID = "u1"
	rt := &podRuntime{
		sandbox: &runtimev1.Sandbox{Id: "sb", CreatedAtUnixNano: 1e9},
		containers: map[string][]*runtimev1.ContainerStatus{"app": {
			{Name: "app", Attempt: 0, Id: "c0", State: runtimev1.ContainerState_CONTAINER_STATE_EXITED, ExitCode: 3, Reason: "Error", FinishedAtUnixNano: 2e9},
			{Name: "app", Attempt: 1, Id: "c1", State: runtimev1.ContainerState_CONTAINER_STATE_RUNNING, StartedAtUnixNano: 3e9, ImageRef: "sha256:abc"},
		}},
	}
	st := c.computeStatus(pod, rt)
	cs := st.ContainerStatuses[0]
	if cs.State.Running == nil || cs.RestartCount != 1 || cs.ContainerID != "containerd://c1" || !cs.Ready {
		t.Errorf("status = %+v", cs)
	}
	if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 3 {
		t.Errorf("lastState = %+v", cs.LastTerminationState)
	}
	if st.HostIP != "192.0.2.7" || st.StartTime == nil || st.StartTime.Unix() != 1 {
		t.Errorf("hostIP %q, startTime %v", st.HostIP, st.StartTime)
	}
	if st.Phase != corev1.PodRunning {
		t.Errorf("phase = %s", st.Phase)
	}
	var ready bool
	for _, cond := range st.Conditions {
		if cond.Type == corev1.PodReady {
			ready = cond.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		t.Errorf("Ready condition not true: %+v", st.Conditions)
	}
}

func TestInsertAttemptKeepsOrderAndNewestState(t *testing.T) {
	s := newRuntimeState()
	ref := &runtimev1.PodRef{Uid: "u"}
	s.setContainer(&runtimev1.ContainerStatus{Pod: ref, Name: "a", Attempt: 1, State: runtimev1.ContainerState_CONTAINER_STATE_RUNNING})
	s.setContainer(&runtimev1.ContainerStatus{Pod: ref, Name: "a", Attempt: 0, State: runtimev1.ContainerState_CONTAINER_STATE_EXITED})
	// A late "running" for attempt 1 after its exit must not bring it back.
	s.setContainer(&runtimev1.ContainerStatus{Pod: ref, Name: "a", Attempt: 1, State: runtimev1.ContainerState_CONTAINER_STATE_EXITED})
	s.setContainer(&runtimev1.ContainerStatus{Pod: ref, Name: "a", Attempt: 1, State: runtimev1.ContainerState_CONTAINER_STATE_RUNNING})
	p := s.get("u")
	if p.latest("a").Attempt != 1 || p.latest("a").State != runtimev1.ContainerState_CONTAINER_STATE_EXITED {
		t.Errorf("latest = %+v", p.latest("a"))
	}
	if p.previous("a").Attempt != 0 {
		t.Errorf("previous = %+v", p.previous("a"))
	}
}
