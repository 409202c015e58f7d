package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

func TestPodRunsToCompletionWithLogs(t *testing.T) {
	ns := namespace(t)
	pod := busyboxPod("two", "", corev1.RestartPolicyNever)
	pod.Spec.Containers = []corev1.Container{
		{
			Name: "a", Image: env.Image(),
			Command:    []string{"sh", "-c"},
			Args:       []string{"echo hello $GREETING; pwd; echo expanded $(GREETING)"},
			WorkingDir: "/tmp",
			Env:        []corev1.EnvVar{{Name: "GREETING", Value: "world"}},
		},
		{Name: "b", Image: env.Image(), Command: []string{"echo"}, Args: []string{"from", "b"}},
	}
	createPod(t, ns, pod)
	done := waitPod(t, ns, "two", 2*time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
	for _, cs := range done.Status.ContainerStatuses {
		term := cs.State.Terminated
		if term == nil || term.ExitCode != 0 || term.Reason != "Completed" || !strings.HasPrefix(cs.ContainerID, "containerd://") {
			t.Errorf("container %s: %+v (id %q)", cs.Name, cs.State, cs.ContainerID)
		}
	}

	out, err := kubectl(t, "-n", ns, "logs", "two", "-c", "a")
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello world\n/tmp\nexpanded world\n"; out != want {
		t.Errorf("logs -c a = %q, want %q", out, want)
	}
	if out, err = kubectl(t, "-n", ns, "logs", "two", "-c", "b"); err != nil || out != "from b\n" {
		t.Errorf("logs -c b = %q, %v", out, err)
	}
	if out, err = kubectl(t, "-n", ns, "logs", "two", "-c", "a", "--tail=1"); err != nil || out != "expanded world\n" {
		t.Errorf("logs --tail=1 = %q, %v", out, err)
	}
	out, err = kubectl(t, "-n", ns, "logs", "two", "-c", "a", "--timestamps")
	if err != nil {
		t.Fatal(err)
	}
	stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z hello world$`)
	if first := strings.SplitN(out, "\n", 2)[0]; !stamped.MatchString(first) {
		t.Errorf("logs --timestamps: first line %q has no RFC 3339 timestamp", first)
	}
}

func TestLogsFollow(t *testing.T) {
	ns := namespace(t)
	createPod(t, ns, busyboxPod("ticker", "for i in 1 2 3; do echo tick $i; sleep 1; done", corev1.RestartPolicyNever))
	waitPod(t, ns, "ticker", time.Minute, "Running", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodSucceeded
	})
	// -f returns once the container has exited, with every line.
	out, err := kubectl(t, "-n", ns, "logs", "-f", "ticker")
	if err != nil {
		t.Fatal(err)
	}
	if want := "tick 1\ntick 2\ntick 3\n"; out != want {
		t.Errorf("logs -f = %q, want %q", out, want)
	}
}

func TestFailingContainerReportsExitCode(t *testing.T) {
	ns := namespace(t)
	createPod(t, ns, busyboxPod("fails", "echo about to fail >&2; exit 3", corev1.RestartPolicyNever))
	p := waitPod(t, ns, "fails", time.Minute, "Failed", phaseIs(corev1.PodFailed))
	term := p.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 3 || term.Reason != "Error" {
		t.Fatalf("terminated state = %+v", p.Status.ContainerStatuses[0].State)
	}
	if out, _ := kubectl(t, "-n", ns, "logs", "fails"); out != "about to fail\n" {
		t.Errorf("stderr in logs = %q", out)
	}
}

func TestRestartPolicyAlwaysRestarts(t *testing.T) {
	ns := namespace(t)
	createPod(t, ns, busyboxPod("again", "echo run; exit 1", corev1.RestartPolicyAlways))
	p := waitPod(t, ns, "again", 2*time.Minute, "restarted", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	cs := p.Status.ContainerStatuses[0]
	if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("lastState = %+v", cs.LastTerminationState)
	}
	waitPod(t, ns, "again", time.Minute, "in CrashLoopBackOff", func(p *corev1.Pod) bool {
		return waitingReason(p) == "CrashLoopBackOff"
	})
}

func TestGracefulDeletion(t *testing.T) {
	ns := namespace(t)
	// sh as PID 1 only dies of SIGTERM if it traps it; sleep in a loop keeps it responsive.
	handles := busyboxPod("handles-term", "trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done", corev1.RestartPolicyAlways)
	grace := int64(30)
	handles.Spec.TerminationGracePeriodSeconds = &grace
	ignores := busyboxPod("ignores-term", "trap '' TERM; while true; do sleep 0.1; done", corev1.RestartPolicyAlways)
	createPod(t, ns, handles)
	createPod(t, ns, ignores)
	waitPod(t, ns, "handles-term", time.Minute, "Running", phaseIs(corev1.PodRunning))
	waitPod(t, ns, "ignores-term", time.Minute, "Running", phaseIs(corev1.PodRunning))

	for name, wantExit := range map[string]int32{"handles-term": 0, "ignores-term": 137} {
		w, err := env.Client().CoreV1().Pods(ns).Watch(context.Background(), metav1.SingleObject(metav1.ObjectMeta{Name: name}))
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Client().CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// The last status written before the pod goes says how its container ended.
		var last *corev1.Pod
		timeout := time.After(time.Minute)
	events:
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok || ev.Type == watch.Deleted {
					break events
				}
				last = ev.Object.(*corev1.Pod)
			case <-timeout:
				t.Fatalf("%s not deleted within a minute", name)
			}
		}
		w.Stop()
		if last == nil || len(last.Status.ContainerStatuses) == 0 || last.Status.ContainerStatuses[0].State.Terminated == nil {
			t.Fatalf("%s: no terminated status before deletion: %s", name, describeStatus(last))
		}
		if got := last.Status.ContainerStatuses[0].State.Terminated.ExitCode; got != wantExit {
			t.Errorf("%s: exit code %d, want %d (SIGTERM then SIGKILL after the grace period)", name, got, wantExit)
		}
	}
}

func TestDeletedPodLeavesNothing(t *testing.T) {
	ns := namespace(t)
	p := createPod(t, ns, busyboxPod("sleeper", "sleep 3600", corev1.RestartPolicyAlways))
	waitPod(t, ns, "sleeper", time.Minute, "Running", phaseIs(corev1.PodRunning))
	before := inspectHost(t, string(p.UID))
	if before.runningTasks != 1 || before.netns != 1 || before.snapshots < 1 {
		t.Fatalf("running pod: host holds %+v, want one running task, a netns and a snapshot", before)
	}
	if err := env.Client().CoreV1().Pods(ns).Delete(context.Background(), "sleeper", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ns, "sleeper", time.Minute)
	if after := inspectHost(t, string(p.UID)); after != (hostState{}) {
		t.Fatalf("deleted pod: host still holds %+v", after)
	}
}
