package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
)

// namespace makes a namespace for one test and deletes it afterwards.
func namespace(t *testing.T) string {
	t.Helper()
	name := "e2e-" + strings.ToLower(rand.String(6))
	ctx := context.Background()
	_, err := env.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	// Pods need the default service account to exist before they are admitted.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := env.Client().CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s has no default service account: %v", name, err)
	}
	t.Cleanup(func() {
		_ = env.Client().CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// busyboxPod is a pod running one busybox container with the given shell script.
func busyboxPod(name, script string, policy corev1.RestartPolicy) *corev1.Pod {
	grace := int64(2)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy:                 policy,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name:            "main",
				Image:           env.Image(),
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"sh", "-c", script},
			}},
		},
	}
}

func createPod(t *testing.T, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	created, err := env.Client().CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return created
}

// waitPod waits until cond holds for the pod, and fails the test with the
// pod's last status when it does not within timeout.
func waitPod(t *testing.T, ns, name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := env.Client().CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s: not %s within %s; last status: %s\nthe agent's log of it:\n%s", ns, name, what, timeout, describeStatus(last), agentLogOf(ns, name, last))
	}
	return last
}

// agentLogOf is what the agent's log says of the pod (by name or UID): the
// part of it a failed wait needs, which the end of the log seldom holds.
func agentLogOf(ns, name string, p *corev1.Pod) string {
	data, err := os.ReadFile(filepath.Join(env.Paths().Logs, "agent.log"))
	if err != nil {
		return err.Error()
	}
	field := "pod=" + ns + "/" + name
	var lines []string
	for _, line := range strings.Split(string(data), "\n") {
		if (p != nil && strings.Contains(line, string(p.UID))) || slices.Contains(strings.Fields(line), field) {
			lines = append(lines, line)
		}
	}
	if len(lines) > 100 {
		lines = lines[len(lines)-100:]
	}
	return strings.Join(lines, "\n")
}

func describeStatus(p *corev1.Pod) string {
	if p == nil {
		return "(never seen)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s node=%q", p.Status.Phase, p.Spec.NodeName)
	for _, cs := range p.Status.ContainerStatuses {
		fmt.Fprintf(&b, " [%s restarts=%d", cs.Name, cs.RestartCount)
		switch {
		case cs.State.Waiting != nil:
			fmt.Fprintf(&b, " waiting %s: %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Running != nil:
			b.WriteString(" running")
		case cs.State.Terminated != nil:
			fmt.Fprintf(&b, " terminated %s exit=%d", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
		}
		b.WriteString("]")
	}
	return b.String()
}

func phaseIs(phase corev1.PodPhase) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool { return p.Status.Phase == phase }
}

func waitingReason(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil {
			return cs.State.Waiting.Reason
		}
	}
	return ""
}

// waitGone waits until the pod no longer exists.
func waitGone(t *testing.T, ns, name string, timeout time.Duration) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := env.Client().CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err != nil, nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s still exists after %s", ns, name, timeout)
	}
}

// kubectl runs the kubectl built with the control plane against the cluster.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.Kubectl(), append([]string{"--kubeconfig", env.Kubeconfig()}, args...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String(), nil
}

// podsOnNode lists the pods bound to the fedlet node in a namespace.
func podsOnNode(t *testing.T, ns string) []corev1.Pod {
	t.Helper()
	list, err := env.Client().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", env.NodeName()).String(),
	})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	return list.Items
}
