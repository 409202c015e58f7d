package federation

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestStreamsReachTheMemberPod: `kubectl attach -i` and `kubectl logs -f`
// on the hub reach the pod in the member, through the hub's API server,
// the agent's node API and the member's API server.
func TestStreamsReachTheMemberPod(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()

	t.Run("attach -i", func(t *testing.T) {
		// With stdinOnce the end of the client's input ends the container's
		// stdin: cat returns and the container says bye.
		p := sleeper("talker")
		c := &p.Spec.Containers[0]
		c.Command = []string{"sh", "-c", "echo ready; cat; echo bye"}
		c.Stdin, c.StdinOnce = true, true
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		toMember(&p.Spec)
		if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRunning(t, ns, p.Name, member.Name())
		poll(t, time.Minute, "the talker ready", func(context.Context) (bool, string) {
			out, err := kubectl(t, "-n", ns, "logs", p.Name)
			return err == nil && out == "ready\n", fmt.Sprintf("%q %v", out, err)
		})
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, hub.Kubectl(), "--kubeconfig", hub.Kubeconfig(), "-n", ns, "attach", "-i", p.Name)
		cmd.Stdin = strings.NewReader("hello from the hub\n")
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "hello from the hub\n") || !strings.Contains(string(out), "bye\n") {
			t.Errorf("attach -i = %q, %v; want the echoed input and bye", out, err)
		}
		poll(t, time.Minute, "the talker Succeeded on the hub once its stdin ended", func(ctx context.Context) (bool, string) {
			got, err := hub.Client().CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return got.Status.Phase == corev1.PodSucceeded, describePod(got)
		})
	})

	t.Run("logs -f", func(t *testing.T) {
		p := sleeper("counter")
		p.Spec.Containers[0].Command = []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.3; done"}
		toMember(&p.Spec)
		if _, err := hub.Client().CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRunning(t, ns, p.Name, member.Name())
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, hub.Kubectl(), "--kubeconfig", hub.Kubeconfig(), "-n", ns, "logs", "-f", p.Name)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		// Lines keep coming while the stream is open: more than the pod
		// had printed when it was opened.
		lines := bufio.NewScanner(stdout)
		var got []string
		for len(got) < 15 && lines.Scan() {
			got = append(got, lines.Text())
		}
		if len(got) < 15 {
			t.Fatalf("logs -f gave %d lines before it ended (%v): %q", len(got), lines.Err(), got)
		}
		for i, l := range got {
			if want := fmt.Sprintf("line %d", i+1); l != want {
				t.Fatalf("logs -f line %d = %q, want %q (all: %q)", i+1, l, want, got)
			}
		}
	})
}
