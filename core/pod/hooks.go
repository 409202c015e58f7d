package pod

import (
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

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/plugins/version"
)

// hookRunner runs containers' lifecycle handlers (exec, httpGet, sleep) as
// the kubelet does.
type hookRunner struct {
	exec     containerExec
	nodeInfo *podcontroller.NodeInfo
}

// run runs one lifecycle handler of a container. On failure it returns
// the kubelet's message saying why.
func (c *hookRunner) run(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, h *corev1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		out, err := c.exec.sync(ctx, pod, ctr.Name, h.Exec.Command)
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q", h.Exec.Command, ctr.Name, podName(pod), err, out), err
		}
		return "", nil
	case h.HTTPGet != nil:
		if err := c.httpGet(ctx, pod, ctr, h.HTTPGet); err != nil {
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

// httpGet sends the hook's GET, from the agent's host, to the pod's IP
// (or the host the hook names). Like the kubelet, any HTTP response is a
// success: only a request that gets none fails.
func (c *hookRunner) httpGet(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, get *corev1.HTTPGetAction) error {
	host := get.Host
	if host == "" {
		host = pod.Status.PodIP
		if pod.Spec.HostNetwork {
			host = c.nodeInfo.Address(ctx)
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
