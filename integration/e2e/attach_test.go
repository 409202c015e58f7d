package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestKubectlAttach(t *testing.T) {
	ns := namespace(t)

	// -i: what the client types reaches the container's stdin, and with
	// stdinOnce its end ends the container's stdin, so cat returns.
	talker := busyboxPod("talker", "echo ready; cat; echo bye", corev1.RestartPolicyNever)
	talker.Spec.Containers[0].Stdin = true
	talker.Spec.Containers[0].StdinOnce = true
	createPod(t, ns, talker)
	waitLogs(t, ns, "talker", "ready\n")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.Kubectl(), "--kubeconfig", env.Kubeconfig(), "-n", ns, "attach", "-i", "talker")
	cmd.Stdin = strings.NewReader("hello\n")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "hello\n") || !strings.Contains(string(out), "bye\n") {
		t.Errorf("attach -i = %q, %v; want the echoed input and bye", out, err)
	}
	waitPod(t, ns, "talker", time.Minute, "Succeeded once its stdin ended", phaseIs(corev1.PodSucceeded))

	// Without -i: the output from the moment of attaching, until the
	// container exits.
	ticker := busyboxPod("ticker", "echo ready; sleep 5; for i in 1 2 3; do echo tick $i; done", corev1.RestartPolicyNever)
	createPod(t, ns, ticker)
	waitLogs(t, ns, "ticker", "ready\n")
	out2, err := kubectl(t, "-n", ns, "attach", "ticker")
	if err != nil || !strings.Contains(out2, "tick 1\ntick 2\ntick 3\n") || strings.Contains(out2, "ready") {
		t.Errorf("attach = %q, %v; want the ticks printed after attaching, and not what came before", out2, err)
	}
}

// waitLogs waits until the pod is running and its logs are want.
func waitLogs(t *testing.T, ns, pod, want string) {
	t.Helper()
	waitPod(t, ns, pod, time.Minute, "Running", phaseIs(corev1.PodRunning))
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := kubectl(t, "-n", ns, "logs", pod)
		if err == nil && out == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s = %q, %v; want %q", pod, out, err, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
