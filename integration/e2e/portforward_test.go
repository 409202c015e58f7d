package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// kubectl port-forward reaches a port that listens only on the pod's own
// loopback.
func TestKubectlPortForward(t *testing.T) {
	ns := namespace(t)
	createPod(t, ns, busyboxPod("web", "mkdir -p /tmp/www && echo served-by-pod > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/www", corev1.RestartPolicyAlways))
	waitPod(t, ns, "web", time.Minute, "Running", phaseIs(corev1.PodRunning))

	local := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.Kubectl(), "--kubeconfig", env.Kubeconfig(), "-n", ns, "port-forward", "pod/web", fmt.Sprintf("%d:8080", local))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// kubectl says "Forwarding from ..." once it listens.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "Forwarding from") {
		t.Fatalf("port-forward printed %q, %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	// Twice: each request is a new forwarded connection.
	for i := range 2 {
		body, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/index.html", local))
		if err != nil || body != "served-by-pod\n" {
			t.Fatalf("request %d through port-forward = %q, %v", i, body, err)
		}
	}
}

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
