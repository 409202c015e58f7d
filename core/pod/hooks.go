package pod

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/version"
)

const (
	// minStopGrace is the least time a container is given to stop, as the
	// kubelet gives it, even when its preStop hook used up the grace period.
	minStopGrace = 2
	// hookOutputLimit bounds what is kept of a hook command's output.
	hookOutputLimit = 10 << 10
)

// postStart runs the container's postStart hook right after its start. A
// failing hook kills the container, which then restarts as the pod's
// restartPolicy says; the hook's message (it may hold the command's output)
// goes into the container's status, never into an event.
func (c *Controller) postStart(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, st *runtimev1.ContainerStatus) error {
	msg, err := c.runHook(ctx, pod, ctr, ctr.Lifecycle.PostStart)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // the pod is being deleted: its termination stops the container
	}
	c.log.Warn("postStart hook failed; killing the container", "pod", pod.Namespace+"/"+pod.Name, "container", ctr.Name)
	c.containerEvent(pod, ctr, st.Id, corev1.EventTypeWarning, eventFailedPostStartHook, "PostStartHook failed")
	if _, err := c.stopContainer(ctx, pod, ctr, st.Id, podGrace(pod), "FailedPostStartHook"); err != nil {
		return fmt.Errorf("kill container %s after its postStart hook failed: %w", ctr.Name, err)
	}
	if shouldRestart(pod.Spec.RestartPolicy, 1) {
		c.setWaiting(pod.UID, ctr.Name, &waitReason{"PostStartHookError", msg})
	}
	return nil
}

// stopContainer stops a running container as the kubelet's killContainer
// does: the Killing event (message, or "Stopping container NAME"), the
// preStop hook within the grace period, then the runtime's stop with what
// is left of it, never less than minStopGrace.
func (c *Controller) stopContainer(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, id string, grace int64, message string) (*runtimev1.ContainerStatus, error) {
	if message == "" {
		message = "Stopping container " + ctr.Name
	}
	c.containerEvent(pod, ctr, id, corev1.EventTypeNormal, eventKilling, "%s", message)
	if ctr.Lifecycle != nil && ctr.Lifecycle.PreStop != nil && grace > 0 {
		grace -= c.preStop(ctx, pod, ctr, id, grace)
	}
	grace = max(grace, minStopGrace)
	callCtx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second+stopSlack)
	defer cancel()
	st, err := c.runtime.StopContainer(callCtx, &runtimev1.StopContainerRequest{
		Node: c.node, PodUid: string(pod.UID), Name: ctr.Name, GracePeriodSeconds: grace,
	})
	if err != nil {
		return nil, fmt.Errorf("stop container %s of pod %s/%s: %w", ctr.Name, pod.Namespace, pod.Name, err)
	}
	c.state.setContainer(st)
	return st, nil
}

// preStop runs the container's preStop hook for at most grace seconds and
// returns the whole seconds it took.
func (c *Controller) preStop(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, id string, grace int64) int64 {
	began := time.Now()
	hookCtx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second)
	defer cancel()
	if _, err := c.runHook(hookCtx, pod, ctr, ctr.Lifecycle.PreStop); err != nil {
		if hookCtx.Err() != nil && ctx.Err() == nil {
			c.log.Info("preStop hook did not complete within the grace period", "pod", pod.Namespace+"/"+pod.Name, "container", ctr.Name, "grace_seconds", grace)
		} else {
			c.log.Warn("preStop hook failed", "pod", pod.Namespace+"/"+pod.Name, "container", ctr.Name)
			c.containerEvent(pod, ctr, id, corev1.EventTypeWarning, eventFailedPreStopHook, "PreStopHook failed")
		}
	}
	return int64(time.Since(began).Seconds())
}

// runHook runs one lifecycle handler of a container. On failure it returns
// the kubelet's message saying why.
func (c *Controller) runHook(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, h *corev1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		out, err := c.execSync(ctx, pod, ctr.Name, h.Exec.Command)
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q", h.Exec.Command, ctr.Name, podName(pod), err, out), err
		}
		return "", nil
	case h.HTTPGet != nil:
		if err := c.httpHook(ctx, pod, ctr, h.HTTPGet); err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.HTTPGet.Path, ctr.Name, podName(pod), err), err
		}
		return "", nil
	case h.Sleep != nil:
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return "", nil
		case <-ctx.Done():
			err := errors.New("container terminated before sleep hook finished")
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v", h.Sleep.Seconds, ctr.Name, podName(pod), err), err
		}
	}
	err := fmt.Errorf("invalid handler: %v", h)
	return "Cannot run handler: " + err.Error(), err
}

// execSync runs a command in the container through the runtime's Exec and
// returns its output (stdout then stderr, bounded); a non-zero exit is an
// error carrying the code.
func (c *Controller) execSync(ctx context.Context, pod *corev1.Pod, container string, cmd []string) (string, error) {
	code, stdout, stderr, err := c.runCommand(ctx, pod.UID, container, cmd)
	if err != nil {
		return stdout + stderr, err
	}
	if code != 0 {
		return stdout + stderr, fmt.Errorf("command '%s' exited with %d: %s", strings.Join(cmd, " "), code, stderr)
	}
	return stdout + stderr, nil
}

// runCommand runs a command in the container through the runtime's Exec
// until it exits or ctx ends (which ends the command), and returns its exit
// code and its output, each stream bounded. Hooks and exec probes run
// through it.
func (c *Controller) runCommand(ctx context.Context, uid types.UID, container string, cmd []string) (code int32, stdout, stderr string, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.runtime.Exec(ctx)
	if err != nil {
		return 0, "", "", fmt.Errorf("exec in container %s: %w", container, err)
	}
	start := &runtimev1.ExecStart{Node: c.node, PodUid: string(uid), Container: container, Command: cmd}
	if err := stream.Send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Start{Start: start}}); err != nil {
		return 0, "", "", fmt.Errorf("exec in container %s: %w", container, err)
	}
	_ = stream.CloseSend()
	var out, errOut boundedBuffer
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return 0, out.String(), errOut.String(), errors.New("the runtime ended the exec without an exit code")
		}
		if err != nil {
			if ctx.Err() != nil {
				return 0, out.String(), errOut.String(), ctx.Err()
			}
			return 0, out.String(), errOut.String(), errors.New(status.Convert(err).Message())
		}
		switch r := resp.Response.(type) {
		case *runtimev1.ExecResponse_Stdout:
			_, _ = out.Write(r.Stdout)
		case *runtimev1.ExecResponse_Stderr:
			_, _ = errOut.Write(r.Stderr)
		case *runtimev1.ExecResponse_ExitCode:
			return r.ExitCode, out.String(), errOut.String(), nil
		}
	}
}

// httpHook sends the hook's GET, from the agent's host, to the pod's IP
// (or the host the hook names). Like the kubelet, any HTTP response is a
// success: only a request that gets none fails.
func (c *Controller) httpHook(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, get *corev1.HTTPGetAction) error {
	host := get.Host
	if host == "" {
		host = pod.Status.PodIP
		if pod.Spec.HostNetwork {
			host = c.nodeIP()
		}
		if host == "" {
			return errors.New("the pod has no IP address")
		}
	}
	port, err := hookPort(get.Port, ctr)
	if err != nil {
		return err
	}
	scheme := strings.ToLower(string(get.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := get.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-lifecycle/"+version.Version)
	req.Header.Set("Accept", "*/*")
	for _, h := range get.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{Transport: &http.Transport{
		// A pod serves its own certificate: the kubelet's probes do not check it either.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		DisableKeepAlives: true,
	}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, hookOutputLimit))
	return resp.Body.Close()
}

// hookPort resolves a hook's port, by number or by the container's name for it.
func hookPort(port intstr.IntOrString, ctr *corev1.Container) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range ctr.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port %q in container %s", port.StrVal, ctr.Name)
}

// podGrace is the grace period of a container killed while the pod lives
// on: the pod's deletion grace if it has one, else its spec's.
func podGrace(pod *corev1.Pod) int64 {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return *pod.DeletionGracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

// boundedBuffer keeps the first hookOutputLimit bytes written to it.
type boundedBuffer struct{ bytes.Buffer }

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := hookOutputLimit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
