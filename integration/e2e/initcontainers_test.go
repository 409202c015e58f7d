package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func initContainer(name, script string) corev1.Container {
	return corev1.Container{Name: name, Image: env.Image(), ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh", "-c", script}}
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) corev1.PodCondition {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.PodCondition{}
}

func initStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.InitContainerStatuses {
		if p.Status.InitContainerStatuses[i].Name == name {
			return &p.Status.InitContainerStatuses[i]
		}
	}
	return nil
}

// TestInitContainersRunInOrder: each init container runs alone, to its
// success, before the next one and before the app container; meanwhile the
// pod is Pending and not initialized, and at the end Initialized says
// PodCompleted.
func TestInitContainersRunInOrder(t *testing.T) {
	ns := namespace(t)
	pod := busyboxPod("ordered", "echo app", corev1.RestartPolicyNever)
	pod.Spec.InitContainers = []corev1.Container{
		initContainer("first", "echo first; sleep 3"),
		initContainer("second", "echo second"),
	}
	uid := string(createPod(t, ns, pod).UID)

	p := waitPod(t, ns, "ordered", time.Minute, "running its first init container", func(p *corev1.Pod) bool {
		s := initStatus(p, "first")
		return s != nil && s.State.Running != nil
	})
	// Only the sandbox record and the first init container exist.
	if h := inspectHost(t, uid); h.containers != 2 || h.runningTasks != 1 {
		t.Errorf("while the first init container runs, the host holds %+v; want the sandbox and one container", h)
	}
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s while initializing, want Pending", p.Status.Phase)
	}
	if c := podCondition(p, corev1.PodInitialized); c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotInitialized" || !strings.Contains(c.Message, "[first second]") {
		t.Errorf("Initialized while initializing = %+v", c)
	}
	if s := initStatus(p, "second"); s == nil || s.State.Waiting == nil || s.State.Waiting.Reason != "PodInitializing" {
		t.Errorf("second init container while the first runs: %+v", s)
	}
	if w := p.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
		t.Errorf("app container while initializing: %+v", p.Status.ContainerStatuses[0].State)
	}

	p = waitPod(t, ns, "ordered", time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
	first, second := initStatus(p, "first"), initStatus(p, "second")
	for _, s := range []*corev1.ContainerStatus{first, second} {
		if s == nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 || s.State.Terminated.Reason != "Completed" || !s.Ready {
			t.Fatalf("init container status %+v, want completed and ready", s)
		}
	}
	app := p.Status.ContainerStatuses[0].State.Terminated
	if app == nil {
		t.Fatalf("app container %+v", p.Status.ContainerStatuses[0].State)
	}
	// Times are in seconds: each one starts no earlier than the one before ended.
	if second.State.Terminated.StartedAt.Before(&first.State.Terminated.FinishedAt) || app.StartedAt.Before(&second.State.Terminated.FinishedAt) {
		t.Errorf("out of order: first ended %s, second ran %s-%s, app started %s",
			first.State.Terminated.FinishedAt, second.State.Terminated.StartedAt, second.State.Terminated.FinishedAt, app.StartedAt)
	}
	if c := podCondition(p, corev1.PodInitialized); c.Status != corev1.ConditionTrue || c.Reason != "PodCompleted" {
		t.Errorf("Initialized at the end = %+v", c)
	}
	for name, want := range map[string]string{"first": "first\n", "second": "second\n", "main": "app\n"} {
		if out, err := kubectl(t, "-n", ns, "logs", "ordered", "-c", name); err != nil || out != want {
			t.Errorf("logs -c %s = %q, %v; want %q", name, out, err, want)
		}
	}
}

// TestFailingInitContainer: with restartPolicy Never a failed init container
// fails the pod and the app container never starts; otherwise it is
// restarted with the crash back-off, and the app container still waits.
func TestFailingInitContainer(t *testing.T) {
	ns := namespace(t)
	for _, policy := range []corev1.RestartPolicy{corev1.RestartPolicyNever, corev1.RestartPolicyOnFailure} {
		name := "fails-" + strings.ToLower(string(policy))
		pod := busyboxPod(name, "echo app must not run", policy)
		pod.Spec.InitContainers = []corev1.Container{initContainer("setup", "echo setting up; exit 3"), initContainer("after", "true")}
		createPod(t, ns, pod)
	}

	p := waitPod(t, ns, "fails-never", time.Minute, "Failed", phaseIs(corev1.PodFailed))
	if s := initStatus(p, "setup"); s == nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 3 || s.RestartCount != 0 {
		t.Errorf("failed init container: %+v", s)
	}
	if s := initStatus(p, "after"); s == nil || s.State.Waiting == nil {
		t.Errorf("init container after the failed one: %+v, want waiting", s)
	}
	if c := p.Status.ContainerStatuses[0]; c.State.Waiting == nil || c.ContainerID != "" {
		t.Errorf("app container of the failed pod: %+v, want never started", c)
	}
	if c := podCondition(p, corev1.PodInitialized); c.Status != corev1.ConditionFalse {
		t.Errorf("Initialized = %+v", c)
	}

	p = waitPod(t, ns, "fails-onfailure", 2*time.Minute, "restarting its init container in back-off", func(p *corev1.Pod) bool {
		s := initStatus(p, "setup")
		return s != nil && s.RestartCount >= 1 && s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff"
	})
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, want Pending while the init container restarts", p.Status.Phase)
	}
	s := initStatus(p, "setup")
	if s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.ExitCode != 3 {
		t.Errorf("lastState = %+v", s.LastTerminationState)
	}
	if c := p.Status.ContainerStatuses[0]; c.ContainerID != "" {
		t.Errorf("app container started while its init container fails: %+v", c)
	}
	if out, err := kubectl(t, "-n", ns, "logs", "fails-onfailure", "-c", "setup", "--previous"); err != nil || out != "setting up\n" {
		t.Errorf("logs --previous of the init container = %q, %v", out, err)
	}
	events := waitEvents(t, ns, "fails-onfailure", "BackOff", "spec.initContainers{setup}")
	if want := fmt.Sprintf("Back-off restarting failed container setup in pod fails-onfailure_%s(%s)", ns, p.UID); events[0].Message != want {
		t.Errorf("BackOff event %q, want %q", events[0].Message, want)
	}
}
