package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// TestTerminationMessages: what a container writes to its termination
// message path (as any user, at any path) is its terminated state's
// message; with FallbackToLogsOnError a container that fails without
// writing one gets the end of its log instead.
func TestTerminationMessages(t *testing.T) {
	ns := namespace(t)
	type tc struct {
		script string
		policy corev1.TerminationMessagePolicy
		path   string
		user   *int64
		want   string
	}
	// The kubelet's bounds: the last 80 lines, then their last 2048 bytes.
	var lines []string
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("line %03d of a long log, long enough to need cutting\n", i))
	}
	longWant := strings.Join(lines[20:], "")
	longWant = longWant[len(longWant)-2048:]
	var short strings.Builder
	for i := 10; i < 90; i++ {
		fmt.Fprintf(&short, "line %03d\n", i)
	}
	shortWant := short.String()
	cases := map[string]tc{
		"file":             {script: "echo -n DONE > /dev/termination-log", want: "DONE"},
		"file-on-failure":  {script: "echo -n failed for a reason > /dev/termination-log; exit 2", want: "failed for a reason"},
		"custom-nonroot":   {script: "echo -n DONE > /dev/custom-termination-log", path: "/dev/custom-termination-log", user: ptr.To[int64](1000), want: "DONE"},
		"logs-on-error":    {script: "echo DONE; exit 1", policy: corev1.TerminationMessageFallbackToLogsOnError, want: "DONE\n"},
		"logs-long":        {script: "i=0; while [ $i -lt 100 ]; do printf 'line %03d of a long log, long enough to need cutting\\n' $i; i=$((i+1)); done; exit 1", policy: corev1.TerminationMessageFallbackToLogsOnError, want: longWant},
		"logs-many-lines":  {script: "i=0; while [ $i -lt 90 ]; do printf 'line %03d\\n' $i; i=$((i+1)); done; exit 1", policy: corev1.TerminationMessageFallbackToLogsOnError, want: shortWant},
		"logs-success":     {script: "echo -n DONE", policy: corev1.TerminationMessageFallbackToLogsOnError, want: ""},
		"logs-file-wins":   {script: "echo -n OK > /dev/termination-log; echo in the log; exit 1", policy: corev1.TerminationMessageFallbackToLogsOnError, want: "OK"},
		"file-policy-logs": {script: "echo in the log; exit 1", want: ""},
	}
	for name, c := range cases {
		pod := busyboxPod(name, c.script, corev1.RestartPolicyNever)
		ctr := &pod.Spec.Containers[0]
		if c.policy != "" {
			ctr.TerminationMessagePolicy = c.policy
		}
		if c.path != "" {
			ctr.TerminationMessagePath = c.path
		}
		if c.user != nil {
			ctr.SecurityContext = &corev1.SecurityContext{RunAsUser: c.user}
		}
		createPod(t, ns, pod)
	}
	for name, c := range cases {
		p := waitPod(t, ns, name, time.Minute, "finished", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		})
		term := p.Status.ContainerStatuses[0].State.Terminated
		if term == nil {
			t.Errorf("%s: %s", name, describeStatus(p))
			continue
		}
		if term.Message != c.want {
			out, _ := kubectl(t, "-n", ns, "logs", name)
			t.Errorf("%s: message %q, want %q (exit %d, output %q)", name, term.Message, c.want, term.ExitCode, out)
		}
	}
}

// TestLogsPrevious: after a restart, `kubectl logs --previous` shows the
// attempt before the one running, whose own output `kubectl logs` shows.
func TestLogsPrevious(t *testing.T) {
	ns := namespace(t)
	script := "echo run $(cat /proc/sys/kernel/random/uuid); sleep 5; exit 1"
	createPod(t, ns, busyboxPod("twice", script, corev1.RestartPolicyAlways))

	waitPod(t, ns, "twice", time.Minute, "running", phaseIs(corev1.PodRunning))
	if out, err := kubectl(t, "-n", ns, "logs", "twice", "--previous"); err == nil {
		t.Errorf("logs --previous before any restart = %q, want an error: there is no previous container", out)
	}
	var first string
	waitFor(t, time.Minute, "the first attempt's output", func() (bool, string) {
		first, _ = kubectl(t, "-n", ns, "logs", "twice")
		return strings.HasPrefix(first, "run "), first
	})
	p := waitPod(t, ns, "twice", time.Minute, "restarted once and running", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount == 1 && cs.State.Running != nil
	})
	previous, err := kubectl(t, "-n", ns, "logs", "twice", "--previous")
	if err != nil {
		t.Fatal(err)
	}
	if previous != first || !strings.HasPrefix(previous, "run ") {
		t.Errorf("logs --previous = %q, want the first attempt's %q", previous, first)
	}
	var current string
	waitFor(t, time.Minute, "the second attempt's output", func() (bool, string) {
		current, _ = kubectl(t, "-n", ns, "logs", "twice")
		return strings.HasPrefix(current, "run "), current
	})
	if current == previous {
		t.Errorf("logs and logs --previous both show %q", current)
	}
	if cs := p.Status.ContainerStatuses[0]; cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("lastState = %+v", cs.LastTerminationState)
	}
}
