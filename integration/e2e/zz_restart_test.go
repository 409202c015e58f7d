package e2e

// This file's name sorts last so that its test, which stops and restarts
// the shared cluster, runs after every other test of the package.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedlet/fedlet/integration/cluster"
)

// TestStopLeavesNothingAndRestartKeepsObjects is `fedlet up`'s Ctrl-C and a
// second `fedlet up` on the same data directory.
func TestStopLeavesNothingAndRestartKeepsObjects(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	_, err := env.Client().CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := createPod(t, ns, busyboxPod("survivor", "sleep 3600", corev1.RestartPolicyAlways))
	waitPod(t, ns, "survivor", time.Minute, "Running", phaseIs(corev1.PodRunning))

	stopCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := env.Stop(stopCtx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, p := range processes(t) {
		if strings.Contains(strings.Join(p.argv, " "), clusterOpts.DataDir) {
			t.Errorf("process %d still runs after stop: %v", p.pid, p.argv)
		}
	}
	if n := countMatching(t, "/proc/self/mountinfo", func(line string) bool { return strings.Contains(line, clusterOpts.DataDir) }); n != 0 {
		t.Errorf("%d mounts under %s after stop", n, clusterOpts.DataDir)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", "fedlet-"+string(pod.UID))); err == nil {
		t.Errorf("the pod's network namespace is left after stop")
	}

	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	env, err = cluster.Start(startCtx, clusterOpts)
	if err != nil {
		t.Fatalf("start again: %v", err)
	}
	cm, err := env.Client().CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || cm.Data["k"] != "v" {
		t.Fatalf("config map after restart: %v, %v", cm, err)
	}
	waitPod(t, ns, "survivor", 2*time.Minute, "Running again", func(p *corev1.Pod) bool {
		return p.UID == pod.UID && p.Status.Phase == corev1.PodRunning && p.Status.ContainerStatuses[0].State.Running != nil
	})
}
