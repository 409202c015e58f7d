package pod

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/fedlet/fedlet/core/podcontroller"
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
		if got := phase(pod, nil, tc.statuses); got != tc.want {
			t.Errorf("%s: phase = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func restarting(code int32) corev1.ContainerStatus {
	cs := waiting()
	cs.State.Waiting.Reason = "CrashLoopBackOff"
	cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: code}
	return cs
}

func TestPhaseWithInitContainers(t *testing.T) {
	app := []corev1.ContainerStatus{waiting()}
	cases := []struct {
		name   string
		policy corev1.RestartPolicy
		init   []corev1.ContainerStatus
		app    []corev1.ContainerStatus
		want   corev1.PodPhase
	}{
		{"first init running", corev1.RestartPolicyAlways, []corev1.ContainerStatus{running(), waiting()}, app, corev1.PodPending},
		{"second init waiting", corev1.RestartPolicyAlways, []corev1.ContainerStatus{exited(0), waiting()}, app, corev1.PodPending},
		{"init failed, never", corev1.RestartPolicyNever, []corev1.ContainerStatus{exited(1), waiting()}, app, corev1.PodFailed},
		{"init failed, restarting", corev1.RestartPolicyOnFailure, []corev1.ContainerStatus{restarting(1), waiting()}, app, corev1.PodPending},
		{"init failed, always", corev1.RestartPolicyAlways, []corev1.ContainerStatus{exited(2)}, app, corev1.PodPending},
		{"initialized, app running", corev1.RestartPolicyNever, []corev1.ContainerStatus{exited(0), exited(0)}, []corev1.ContainerStatus{running()}, corev1.PodRunning},
		{"initialized, app done", corev1.RestartPolicyNever, []corev1.ContainerStatus{exited(0)}, []corev1.ContainerStatus{exited(0)}, corev1.PodSucceeded},
	}
	for _, tc := range cases {
		pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: tc.policy}}
		if got := phase(pod, tc.init, tc.app); got != tc.want {
			t.Errorf("%s: phase = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func condition(st *corev1.PodStatus, t corev1.PodConditionType) corev1.PodCondition {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.PodCondition{}
}

// While the second of two init containers runs, the pod is Pending and not
// initialized, its app container waits with PodInitializing, and the first
// init container is reported completed and ready.
func TestInitContainerStatuses(t *testing.T) {
	c := &statusGenerator{waiting: newWaitReasons(), messages: newTerminationMessages(nil, "", nil), nodeInfo: podcontroller.KnownNode("192.0.2.7", nil)}
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		RestartPolicy:  corev1.RestartPolicyNever,
		InitContainers: []corev1.Container{{Name: "one"}, {Name: "two"}},
		Containers:     []corev1.Container{{Name: "app"}},
	}}
	pod.UID = "u1"
	exitedOK := &runtimev1.ContainerStatus{Name: "one", Id: "i1", State: runtimev1.ContainerState_CONTAINER_STATE_EXITED, Reason: "Completed"}
	rt := &podRuntime{sandbox: &runtimev1.Sandbox{Id: "sb"}, containers: map[string][]*runtimev1.ContainerStatus{
		"one": {exitedOK},
		"two": {{Name: "two", Id: "i2", State: runtimev1.ContainerState_CONTAINER_STATE_RUNNING}},
	}}
	st := c.compute(pod, rt)
	if len(st.InitContainerStatuses) != 2 || !st.InitContainerStatuses[0].Ready || st.InitContainerStatuses[1].Ready {
		t.Fatalf("init statuses = %+v", st.InitContainerStatuses)
	}
	if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
		t.Errorf("app container = %+v, want waiting PodInitializing", st.ContainerStatuses[0].State)
	}
	if st.Phase != corev1.PodPending {
		t.Errorf("phase = %s", st.Phase)
	}
	init := condition(st, corev1.PodInitialized)
	if init.Status != corev1.ConditionFalse || init.Reason != "ContainersNotInitialized" || init.Message != "containers with incomplete status: [two]" {
		t.Errorf("Initialized = %+v", init)
	}

	// Both done, the app container has run to completion: PodCompleted.
	rt.containers["two"] = []*runtimev1.ContainerStatus{{Name: "two", Id: "i2", State: runtimev1.ContainerState_CONTAINER_STATE_EXITED}}
	rt.containers["app"] = []*runtimev1.ContainerStatus{{Name: "app", Id: "a", State: runtimev1.ContainerState_CONTAINER_STATE_EXITED}}
	st = c.compute(pod, rt)
	if st.Phase != corev1.PodSucceeded {
		t.Errorf("phase = %s", st.Phase)
	}
	if init := condition(st, corev1.PodInitialized); init.Status != corev1.ConditionTrue || init.Reason != "PodCompleted" {
		t.Errorf("Initialized = %+v", init)
	}
	if ready := condition(st, corev1.PodReady); ready.Status != corev1.ConditionFalse || ready.Reason != "PodCompleted" {
		t.Errorf("Ready = %+v", ready)
	}

	// A failed init container with restartPolicy Never fails the pod.
	rt.containers["two"] = []*runtimev1.ContainerStatus{{Name: "two", Id: "i2", State: runtimev1.ContainerState_CONTAINER_STATE_EXITED, ExitCode: 1}}
	delete(rt.containers, "app")
	st = c.compute(pod, rt)
	if st.Phase != corev1.PodFailed {
		t.Errorf("phase = %s", st.Phase)
	}
	if ready := condition(st, corev1.ContainersReady); ready.Reason != "PodFailed" {
		t.Errorf("ContainersReady = %+v", ready)
	}
}

// A container with FallbackToLogsOnError shows the end of its log when it
// failed without writing a message; a message it wrote wins.
func TestTerminatedMessageFallsBackToLogs(t *testing.T) {
	c := &statusGenerator{waiting: newWaitReasons(), messages: newTerminationMessages(nil, "", nil), nodeInfo: podcontroller.KnownNode("192.0.2.7", nil)}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	pod.UID = "u1"
	c.messages.set("u1", "c0", "from the log\n")
	if got := c.terminated(pod, &runtimev1.ContainerStatus{Id: "c0", ExitCode: 1}).Message; got != "from the log\n" {
		t.Errorf("message = %q", got)
	}
	if got := c.terminated(pod, &runtimev1.ContainerStatus{Id: "c0", ExitCode: 1, Message: "written"}).Message; got != "written" {
		t.Errorf("message = %q", got)
	}
	if needsLogMessage(&runtimev1.ContainerStatus{State: runtimev1.ContainerState_CONTAINER_STATE_EXITED, ExitCode: 128, Reason: reasonStartError}) {
		t.Error("a container that never started has no log to read")
	}
	if needsLogMessage(&runtimev1.ContainerStatus{State: runtimev1.ContainerState_CONTAINER_STATE_EXITED}) {
		t.Error("a container that succeeded needs no message")
	}
}

func TestContainerStatusFromRuntime(t *testing.T) {
	c := &statusGenerator{waiting: newWaitReasons(), messages: newTerminationMessages(nil, "", nil), nodeInfo: podcontroller.KnownNode("192.0.2.7", nil)}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
	pod.UID = "u1"
	rt := &podRuntime{
		sandbox: &runtimev1.Sandbox{Id: "sb", CreatedAtUnixNano: 1e9},
		containers: map[string][]*runtimev1.ContainerStatus{"app": {
			{Name: "app", Attempt: 0, Id: "c0", State: runtimev1.ContainerState_CONTAINER_STATE_EXITED, ExitCode: 3, Reason: "Error", FinishedAtUnixNano: 2e9},
			{Name: "app", Attempt: 1, Id: "c1", State: runtimev1.ContainerState_CONTAINER_STATE_RUNNING, StartedAtUnixNano: 3e9, ImageRef: "sha256:abc"},
		}},
	}
	st := c.compute(pod, rt)
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

// A status read back from the API server must equal the one computed again
// from the same runtime state, or the status writer writes it twice.
func TestStatusSurvivesTheAPIRoundTrip(t *testing.T) {
	c := &statusGenerator{waiting: newWaitReasons(), messages: newTerminationMessages(nil, "", nil), nodeInfo: podcontroller.KnownNode("192.0.2.7", nil)}
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
		Containers:     []corev1.Container{{Name: "app", Image: "busybox"}},
	}}
	pod.UID = "u1"
	rt := &podRuntime{
		sandbox: &runtimev1.Sandbox{Id: "sb", CreatedAtUnixNano: 1_123_456_789},
		containers: map[string][]*runtimev1.ContainerStatus{"init": {
			{Name: "init", Id: "i0", State: runtimev1.ContainerState_CONTAINER_STATE_EXITED, Reason: "Completed", StartedAtUnixNano: 1_200_000_000, FinishedAtUnixNano: 1_300_000_000},
		}, "app": {
			{Name: "app", Attempt: 0, Id: "c0", State: runtimev1.ContainerState_CONTAINER_STATE_EXITED, ExitCode: 3, StartedAtUnixNano: 1_500_000_000, FinishedAtUnixNano: 2_250_000_000},
			{Name: "app", Attempt: 1, Id: "c1", State: runtimev1.ContainerState_CONTAINER_STATE_RUNNING, StartedAtUnixNano: 3_999_999_999},
		}},
	}
	written := c.compute(pod, rt)
	data, err := json.Marshal(written)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &pod.Status); err != nil {
		t.Fatal(err)
	}
	if again := c.compute(pod, rt); !equality.Semantic.DeepEqual(&pod.Status, again) {
		t.Errorf("status read back differs from the one computed again:\nread  %+v\nagain %+v", pod.Status, *again)
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
