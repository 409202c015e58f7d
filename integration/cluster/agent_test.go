package cluster

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestClusterRunsAPod brings up everything, the agent included, and runs
// the pod `fedlet up` suggests to its user.
func TestClusterRunsAPod(t *testing.T) {
	need(t, "root", os.Geteuid() == 0)
	_, err := exec.LookPath("runc")
	need(t, "runc on PATH", err == nil)

	c := startCluster(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods := c.Client().CoreV1().Pods("default")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "hello", Image: c.Image(), Args: []string{"echo", "hello from fedlet"}}},
		},
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		got, err := pods.Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod: %v (agent log: %s)", err, c.Paths().Log("agent"))
		}
		if got.Status.Phase == corev1.PodSucceeded {
			if got.Spec.NodeName != c.NodeName() {
				t.Errorf("pod ran on %q, want %q", got.Spec.NodeName, c.NodeName())
			}
			break
		}
		if got.Status.Phase == corev1.PodFailed {
			t.Fatalf("pod failed: %+v", got.Status)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod still %s; agent log: %s", got.Status.Phase, c.Paths().Log("agent"))
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Through the API server and the agent's node API, as kubectl logs does.
	logs, err := pods.GetLogs("hello", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(logs)) != "hello from fedlet" {
		t.Errorf("logs = %q", logs)
	}
}
