package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedlet/fedlet/core/config"
)

// TestMisbehavingPluginCallsGetAReason runs a second agent whose node's
// runtime plugin passes its health checks but hangs some calls and answers
// others with garbage (testdata/misbehaving, the containerd plugin with
// faults asked for by the pods' names), with a call timeout of 3 s. Each
// faulty pod gets a status saying what went wrong; meanwhile a pod on the
// same node runs to completion, the node stays Ready, the plugin is not
// restarted, and every pod is deleted.
func TestMisbehavingPluginCallsGetAReason(t *testing.T) {
	cfg := loadClusterAgentConfig(t)
	pluginDir := t.TempDir()
	plugin := filepath.Join(pluginDir, "fedlet-misbehaving")
	if out, err := exec.Command("go", "build", "-o", plugin, "./testdata/misbehaving").CombinedOutput(); err != nil {
		t.Fatalf("build the misbehaving plugin: %v\n%s", err, out)
	}
	// The containerd backend finds its log driver beside its executable.
	if err := os.Symlink(filepath.Join(cfg.Plugins.Dirs[0], "fedlet-log-driver"), filepath.Join(pluginDir, "fedlet-log-driver")); err != nil {
		t.Fatal(err)
	}
	rt := withStateDir(cfg.Runtimes[0], t.TempDir())
	rt.Name, rt.Plugin, rt.CallTimeout = "misbehaving", "fedlet-misbehaving", "3s"
	cfg.Plugins.Dirs = append(cfg.Plugins.Dirs, pluginDir)
	cfg.Runtimes = []config.Runtime{rt}
	cfg.Networks = nil
	cfg.Nodes = []config.Node{{Name: "e2e-misbehaving", Runtime: rt.Name}}
	stop := startAgent(t, writeConfig(t, cfg))
	defer stop()
	waitNodeCondition(t, "e2e-misbehaving", corev1.NodeReady, corev1.ConditionTrue, "")
	pid := processOf(t, plugin)

	ns := namespace(t)
	host, _, _ := strings.Cut(env.Image(), "/")
	faulty := map[string]*corev1.Pod{}
	for _, name := range []string{"hang-pull", "hang-start", "garbage-start", "wrong-answer"} {
		p := busyboxPod(name, "echo should not run", corev1.RestartPolicyNever)
		p.Spec.NodeName = "e2e-misbehaving"
		if name == "hang-pull" {
			p.Spec.Containers[0].Image = host + "/hang-pull:latest"
		} else {
			p.Spec.Containers[0].Name = name
		}
		faulty[name] = createPod(t, ns, p)
	}

	// While the pull hangs, the pod says that its container is being created.
	waitPod(t, ns, "hang-pull", time.Minute, "ContainerCreating while its pull hangs", func(p *corev1.Pod) bool {
		return waitingReason(p) == "ContainerCreating"
	})

	want := map[string]struct{ reasons, message string }{
		"hang-pull":     {"ErrImagePull ImagePullBackOff", "plugin misbehaving did not answer PullImage within 3s"},
		"hang-start":    {"CreateContainerError", "plugin misbehaving did not answer StartContainer within 3s"},
		"garbage-start": {"CreateContainerError", "failed to unmarshal"},
		"wrong-answer":  {"CreateContainerError", `the runtime answered StartContainer with the status of container "someone-else" attempt 7`},
	}
	for name, w := range want {
		waitPod(t, ns, name, 2*time.Minute, "waiting with a reason", func(p *corev1.Pod) bool {
			cs := p.Status.ContainerStatuses
			return len(cs) == 1 && cs[0].State.Waiting != nil &&
				strings.Contains(w.reasons, cs[0].State.Waiting.Reason) && strings.Contains(cs[0].State.Waiting.Message, w.message)
		})
	}

	// The faulty calls held up nothing else on the node.
	fine := busyboxPod("fine", "echo fine", corev1.RestartPolicyNever)
	fine.Spec.NodeName = "e2e-misbehaving"
	createPod(t, ns, fine)
	waitPod(t, ns, "fine", time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
	n, err := env.Client().CoreV1().Nodes().Get(context.Background(), "e2e-misbehaving", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range n.Status.Conditions {
		if (c.Type == corev1.NodeReady || c.Type == "RuntimePluginReady") && c.Status != corev1.ConditionTrue {
			t.Errorf("node condition %s is %s (%s): the plugin answers its health checks", c.Type, c.Status, c.Message)
		}
	}
	if now := processOf(t, plugin); now != pid {
		t.Errorf("the plugin was restarted (pid %d, was %d): only its calls misbehave", now, pid)
	}

	for name := range faulty {
		if err := env.Client().CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name := range faulty {
		waitGone(t, ns, name, time.Minute)
	}
}

// processOf is the pid of the one process running the plugin at path (the
// agent starts it by that path; the shims start its log driver by another).
func processOf(t *testing.T, path string) int {
	t.Helper()
	var pids []int
	for _, p := range processes(t) {
		if filepath.Base(p.argv[0]) == filepath.Base(path) && len(p.argv) == 1 {
			pids = append(pids, p.pid)
		}
	}
	if len(pids) != 1 {
		t.Fatalf("%d processes run %s, want 1: %v", len(pids), path, pids)
	}
	return pids[0]
}
