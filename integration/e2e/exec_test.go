package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

func TestKubectlExec(t *testing.T) {
	ns := namespace(t)
	createPod(t, ns, busyboxPod("target", "sleep 3600", corev1.RestartPolicyAlways))
	waitPod(t, ns, "target", time.Minute, "Running", phaseIs(corev1.PodRunning))

	out, err := kubectl(t, "-n", ns, "exec", "target", "--", "sh", "-c", "echo out; echo err >&2; hostname")
	if err != nil || out != "out\ntarget\n" {
		t.Errorf("exec = %q, %v", out, err)
	}

	// The command's exit code is kubectl's.
	_, err = kubectl(t, "-n", ns, "exec", "target", "--", "sh", "-c", "exit 7")
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 7 {
		t.Errorf("exec of exit 7: %v, want kubectl to exit 7", err)
	}

	// -i: stdin reaches the command, and its end ends it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.Kubectl(), "--kubeconfig", env.Kubeconfig(), "-n", ns, "exec", "-i", "target", "--", "sh", "-c", "tr a-z A-Z")
	cmd.Stdin = strings.NewReader("shout\n")
	got, err := cmd.Output()
	if err != nil || string(got) != "SHOUT\n" {
		t.Errorf("exec -i = %q, %v", got, err)
	}

	// -t: the command has a terminal, of the size the client asked for.
	req := env.Client().CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("target").SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "main", Command: []string{"sh", "-c", "tty; stty size"}, Stdout: true, TTY: true}, scheme.ParameterCodec)
	executor, err := remotecommand.NewSPDYExecutor(env.RESTConfig(), "POST", req.URL())
	if err != nil {
		t.Fatal(err)
	}
	var tty bytes.Buffer
	err = executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &tty, Tty: true, TerminalSizeQueue: &fixedSize{rows: 33, cols: 101}})
	if err != nil {
		t.Fatalf("exec -t: %v", err)
	}
	if lines := strings.Fields(tty.String()); len(lines) != 3 || !strings.HasPrefix(lines[0], "/dev/pts/") || lines[1] != "33" || lines[2] != "101" {
		t.Errorf("exec -t printed %q, want a /dev/pts terminal of 33 rows and 101 columns", tty.String())
	}

	// A container that has exited cannot be exec'd into (kubectl itself
	// refuses a finished pod, so the pod runs on in another container).
	partly := busyboxPod("partly", "sleep 3600", corev1.RestartPolicyNever)
	partly.Spec.Containers = append(partly.Spec.Containers, corev1.Container{Name: "done", Image: env.Image(), Command: []string{"true"}})
	createPod(t, ns, partly)
	waitPod(t, ns, "partly", time.Minute, "with one container done", func(p *corev1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "done" && cs.State.Terminated != nil {
				return true
			}
		}
		return false
	})
	if _, err := kubectl(t, "-n", ns, "exec", "partly", "-c", "done", "--", "true"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("exec into a finished container: %v, want an error saying it is not running", err)
	}
}

// fixedSize reports one terminal size, once; nil then ends the resizing.
type fixedSize struct {
	rows, cols uint16
	sent       bool
}

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if f.sent {
		return nil
	}
	f.sent = true
	return &remotecommand.TerminalSize{Width: f.cols, Height: f.rows}
}
