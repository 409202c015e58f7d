package containerd

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// startStdinContainer starts a container with stdin and waits until it has
// printed ready.
func (h *harness) startStdinContainer(pod *runtimev1.PodRef, once bool, command ...string) {
	h.t.Helper()
	_, err := h.rt.StartContainer(h.ctx(), &runtimev1.StartContainerRequest{
		Node: testNode, Pod: pod,
		Container: &runtimev1.ContainerSpec{Name: "app", Image: testImage, Command: command, Stdin: true, StdinOnce: once},
	})
	if err != nil {
		h.t.Fatalf("start container: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1})
		if strings.Contains(out, "ready") {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("container never printed ready; logs %q", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// attach sends input on the container's stdin, then its end, and returns
// what the container printed until the attachment ended or the timeout.
func (h *harness) attach(pod *runtimev1.PodRef, input string, wait time.Duration) (string, error) {
	h.t.Helper()
	ctx := h.ctx()
	stream, err := h.rt.Attach(ctx)
	if err != nil {
		return "", err
	}
	send := func(r *runtimev1.AttachRequest) {
		if err := stream.Send(r); err != nil {
			h.t.Fatalf("send: %v", err)
		}
	}
	send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Start{Start: &runtimev1.AttachStart{Node: testNode, PodUid: pod.GetUid(), Container: "app", Stdin: true}}})
	send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Stdin{Stdin: []byte(input)}})
	send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_StdinDone{StdinDone: true}})
	var out strings.Builder
	got := make(chan error, 1)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				got <- err
				return
			}
			out.Write(resp.GetStdout())
			out.Write(resp.GetStderr())
		}
	}()
	select {
	case err = <-got:
	case <-time.After(wait):
		_ = stream.CloseSend()
		return "", errors.New("attachment did not end")
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return out.String(), err
}

func TestAttachStdinOnce(t *testing.T) {
	h := newHarness(t)
	pod := newPod("attach")
	h.runSandbox(pod, false)
	h.startStdinContainer(pod, true, "sh", "-c", "echo ready; cat; echo done")

	out, err := h.attach(pod, "hello\n", 30*time.Second)
	if err != nil {
		logs, _ := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1})
		t.Fatalf("attach: %v (container %v, logs %q)", err, h.status(pod, "app", 0), logs)
	}
	if !strings.Contains(out, "hello\n") || !strings.Contains(out, "done\n") || strings.Contains(out, "ready") {
		t.Errorf("attached output = %q, want the echoed input and done, and not what came before attaching", out)
	}
	if st := h.waitExited(pod, "app", 0); st.GetExitCode() != 0 {
		t.Errorf("exit code = %d, want 0 once stdin ended", st.GetExitCode())
	}
	logs, _ := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1})
	if logs != "ready\nhello\ndone\n" {
		t.Errorf("logs = %q", logs)
	}
}

// Without stdinOnce the stdin stays open across attachments and across a
// restart of the plugin: the keeper, not the plugin, holds it.
func TestAttachStdinSurvivesPluginRestart(t *testing.T) {
	h := newHarness(t)
	pod := newPod("attach-keep")
	h.runSandbox(pod, false)
	h.startStdinContainer(pod, false, "sh", "-c", "echo ready; while read l; do echo got $l; done; echo eof")

	if _, err := h.attach(pod, "one\n", 2*time.Second); err == nil {
		t.Fatal("the attachment ended although stdin stays open and the container runs")
	}
	h.restartPlugin()
	_, _ = h.attach(pod, "two\n", 2*time.Second)
	if st := h.status(pod, "app", 0); st.GetState() != runtimev1.ContainerState_CONTAINER_STATE_RUNNING {
		t.Fatalf("container state = %v after two attachments, want running", st.GetState())
	}
	logs, _ := h.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1})
	if !strings.Contains(logs, "got one\n") || !strings.Contains(logs, "got two\n") || strings.Contains(logs, "eof") {
		t.Errorf("logs = %q, want both lines read and stdin still open", logs)
	}
}

func TestAttachStdinRefusedWithoutStdin(t *testing.T) {
	h := newHarness(t)
	pod := newPod("attach-nostdin")
	h.runSandbox(pod, false)
	h.startContainer(pod, "app", 0, "sleep", "60")
	if _, err := h.attach(pod, "x\n", 10*time.Second); err == nil || !strings.Contains(err.Error(), "not started with stdin") {
		t.Errorf("attach with stdin to a container without = %v, want FailedPrecondition", err)
	}
}

func TestPortForwardReachesPodLoopback(t *testing.T) {
	h := newHarness(t)
	pod := newPod("forward")
	h.runSandbox(pod, false)
	h.startContainer(pod, "web", 0, "sh", "-c", "mkdir -p /tmp/www && echo hello-from-pod > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/www")

	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := h.forward(pod, 8080, "GET /index.html HTTP/1.0\r\n\r\n")
		if err == nil && strings.Contains(out, "hello-from-pod") {
			body = out
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("port forward never got the page: %q, %v", out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(body, "HTTP/1.") {
		t.Errorf("response = %q", body)
	}
	if _, err := h.forward(pod, 8081, "x"); err == nil || !strings.Contains(err.Error(), "connect to port 8081") {
		t.Errorf("forward to a closed port = %v, want Unavailable naming it", err)
	}
}

func (h *harness) forward(pod *runtimev1.PodRef, port int32, request string) (string, error) {
	stream, err := h.rt.PortForward(h.ctx())
	if err != nil {
		return "", err
	}
	for _, r := range []*runtimev1.PortForwardRequest{
		{Request: &runtimev1.PortForwardRequest_Start{Start: &runtimev1.PortForwardStart{Node: testNode, PodUid: pod.GetUid(), Port: port}}},
		{Request: &runtimev1.PortForwardRequest_Data{Data: []byte(request)}},
		{Request: &runtimev1.PortForwardRequest_DataDone{DataDone: true}},
	} {
		if err := stream.Send(r); err != nil {
			return "", err
		}
	}
	var out strings.Builder
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out.String(), nil
		}
		if err != nil {
			return out.String(), err
		}
		out.Write(resp.GetData())
	}
}
