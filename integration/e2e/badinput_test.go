package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/fedlet/fedlet/core/config"
)

func TestPodsTheNodeCannotRunGetAReason(t *testing.T) {
	ns := namespace(t)
	host, _, _ := strings.Cut(env.Image(), "/")
	missing := busyboxPod("no-such-image", "true", corev1.RestartPolicyNever)
	missing.Spec.Containers[0].Image = host + "/no-such-image:latest"
	unreachable := busyboxPod("stopped-registry", "true", corev1.RestartPolicyNever)
	unreachable.Spec.Containers[0].Image = fmt.Sprintf("127.0.0.1:%d/busybox:latest", closedPort(t))
	sidecar := busyboxPod("with-sidecar", "true", corev1.RestartPolicyNever)
	always := corev1.ContainerRestartPolicyAlways
	sidecar.Spec.InitContainers = []corev1.Container{{Name: "sidecar", Image: env.Image(), Command: []string{"sleep", "3600"}, RestartPolicy: &always}}
	for _, p := range []*corev1.Pod{missing, unreachable, sidecar} {
		createPod(t, ns, p)
	}
	// Meanwhile the agent goes on running everything else.
	createPod(t, ns, busyboxPod("fine", "echo fine", corev1.RestartPolicyNever))

	pulling := func(p *corev1.Pod) bool {
		r := waitingReason(p)
		return r == "ErrImagePull" || r == "ImagePullBackOff"
	}
	p := waitPod(t, ns, "no-such-image", time.Minute, "failing to pull", pulling)
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "not found") {
		t.Errorf("missing image: message %q does not say it is not found", msg)
	}
	waitPod(t, ns, "no-such-image", time.Minute, "in ImagePullBackOff", func(p *corev1.Pod) bool { return waitingReason(p) == "ImagePullBackOff" })
	p = waitPod(t, ns, "stopped-registry", time.Minute, "failing to pull", pulling)
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "connection refused") {
		t.Errorf("unreachable registry: message %q does not say why", msg)
	}
	p = waitPod(t, ns, "with-sidecar", time.Minute, "refused with a reason", func(p *corev1.Pod) bool {
		return waitingReason(p) == "CreateContainerConfigError"
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, `sidecar init container "sidecar"`) {
		t.Errorf("sidecar: message %q does not name it", msg)
	}
	waitPod(t, ns, "fine", time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
}

func TestInvalidConfigNamesTheField(t *testing.T) {
	cfg := loadClusterAgentConfig(t)
	cfg.Nodes[0].Runtime = "docker"
	path := writeConfig(t, cfg)
	out, err := exec.Command(filepath.Join(filepath.Dir(env.Kubectl()), "fedlet"), "agent", "--config", path).CombinedOutput()
	if err == nil {
		t.Fatalf("agent started with an invalid config: %s", out)
	}
	if want := `nodes[0].runtime: "docker" names no runtime`; !strings.Contains(string(out), want) {
		t.Errorf("output %q does not contain %q", out, want)
	}
}

// TestBrokenPluginsAreReportedOnTheirNodes runs a second agent with four
// nodes: one on a plugin that does not exist, one on a binary whose pin is
// wrong, one on a plugin that exits at start, and one on the real plugin.
// The first three say why on their conditions; the fourth runs pods.
func TestBrokenPluginsAreReportedOnTheirNodes(t *testing.T) {
	cfg := loadClusterAgentConfig(t)
	pluginDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(pluginDir, "exits-at-start"), []byte("#!/bin/sh\necho giving up >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(cfg.Plugins.Dirs[0], "fedlet-runtime-containerd")
	if err := os.Symlink(real, filepath.Join(pluginDir, "wrongly-pinned")); err != nil {
		t.Fatal(err)
	}
	cfg.Plugins.Dirs = append(cfg.Plugins.Dirs, pluginDir)
	cfg.Plugins.Checksums["wrongly-pinned"] = "sha256:" + strings.Repeat("0", 64)
	good := withStateDir(cfg.Runtimes[0], t.TempDir())
	good.Name = "good"
	cfg.Runtimes = []config.Runtime{
		good,
		{Name: "missing", Plugin: "no-such-plugin"},
		{Name: "pinned", Plugin: "wrongly-pinned"},
		{Name: "exits", Plugin: "exits-at-start"},
	}
	cfg.Nodes = []config.Node{
		{Name: "e2e-good", Runtime: "good"},
		{Name: "e2e-missing", Runtime: "missing"},
		{Name: "e2e-pinned", Runtime: "pinned"},
		{Name: "e2e-exits", Runtime: "exits"},
	}
	stop := startAgent(t, writeConfig(t, cfg))
	defer stop()

	want := map[string]string{
		"e2e-missing": `plugin "no-such-plugin" not found`,
		"e2e-pinned":  "checksum mismatch",
		"e2e-exits":   "giving up",
	}
	for node, message := range want {
		waitFor(t, time.Minute, node+" reporting its broken plugin", func() (bool, string) {
			n, err := env.Client().CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, c := range n.Status.Conditions {
				if c.Type == "RuntimePluginReady" {
					return c.Status == corev1.ConditionFalse && strings.Contains(c.Message, message), c.Message
				}
			}
			return false, "no RuntimePluginReady condition"
		})
	}

	ns := namespace(t)
	p := busyboxPod("on-good", "echo on the good node", corev1.RestartPolicyNever)
	p.Spec.NodeName = "e2e-good"
	createPod(t, ns, p)
	waitPod(t, ns, "on-good", time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
	if out, err := kubectl(t, "-n", ns, "logs", "on-good"); err != nil || out != "on the good node\n" {
		t.Errorf("logs through the second agent's node API = %q, %v", out, err)
	}
	if err := env.Client().CoreV1().Pods(ns).Delete(context.Background(), "on-good", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ns, "on-good", time.Minute)
}

// loadClusterAgentConfig is the cluster's agent config, the base of a
// second agent's: without the members, which the cluster's agent serves,
// and with its node API on a port of its own.
func loadClusterAgentConfig(t *testing.T) *config.Agent {
	t.Helper()
	cfg, err := config.Load(env.Paths().AgentConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Members = nil
	cfg.NodeAPI.Address = fmt.Sprintf("0.0.0.0:%d", closedPort(t))
	return cfg
}

// withStateDir is the containerd runtime rt with its plugin's state under
// dir, so that a second agent's plugin shares nothing with the cluster's.
func withStateDir(rt config.Runtime, dir string) config.Runtime {
	rt.Config = []byte(strings.Replace(string(rt.Config), `"stateDir":"`, `"stateDir":"`+dir+`/`, 1))
	return rt
}

func writeConfig(t *testing.T, cfg *config.Agent) string {
	t.Helper()
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startAgent runs a second agent; the returned function stops it (SIGTERM)
// and removes its nodes.
func startAgent(t *testing.T, configPath string) func() {
	t.Helper()
	stop := startProcess(t, "second agent", exec.Command(filepath.Join(filepath.Dir(env.Kubectl()), "fedlet"), "agent", "--config", configPath))
	return func() {
		if !stop(30 * time.Second) {
			t.Errorf("second agent did not stop within 30s of SIGTERM")
		}
		cfg, err := config.Load(configPath)
		if err == nil {
			for _, n := range cfg.Nodes {
				_ = env.Client().CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
			}
		}
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
