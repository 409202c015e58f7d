package kubernetes

import (
	"context"
	"errors"
	"io"
	"net/url"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/fedlet/fedlet/plugins/sdk"
)

// The streaming calls (logs, exec, attach, port-forward) go through the
// member's API server to the member pod's kubelet, as `kubectl` does: the
// pods/log, pods/exec, pods/attach and pods/portforward subresources, with
// client-go's streaming clients (SPDY).

// container finds the member pod of a hub pod and one of its containers
// (app, init or ephemeral) by name.
func (m *member) container(ctx context.Context, uid, name string) (*corev1.Pod, *corev1.Container, error) {
	pod, err := m.podByUID(ctx, uid)
	if err != nil {
		return nil, nil, err
	}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return pod, &list[i], nil
			}
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if c := &pod.Spec.EphemeralContainers[i]; c.Name == name {
			return pod, (*corev1.Container)(&c.EphemeralContainerCommon), nil
		}
	}
	return nil, nil, sdk.ContainerNotFound(uid, name)
}

// requireRunning refuses a container that does not run now, as the
// protocol asks (FailedPrecondition), before the member's kubelet would.
func requireRunning(pod *corev1.Pod, name, uid string) error {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			if cs.Name == name && cs.State.Running != nil {
				return nil
			}
		}
	}
	return sdk.ContainerNotRunning(uid, name)
}

// subresourceURL is the URL of a subresource of a member pod.
func (m *member) subresourceURL(pod *corev1.Pod, subresource string, params runtime.Object) *url.URL {
	req := m.client.CoreV1().RESTClient().Post().
		Namespace(pod.Namespace).Resource("pods").Name(pod.Name).SubResource(subresource)
	if params != nil {
		req = req.VersionedParams(params, scheme.ParameterCodec)
	}
	return req.URL()
}

// stream runs a remote command session (exec or attach) against url and
// says how the command ended: its exit code, or why the session failed.
func (m *member) stream(ctx context.Context, u *url.URL, opts remotecommand.StreamOptions) (exitCode int32, err error) {
	executor, err := remotecommand.NewSPDYExecutor(m.rest, "POST", u)
	if err != nil {
		return 0, status.Errorf(codes.Internal, "set up the streaming client of the member cluster of node %s: %v", m.cfg.Node, err)
	}
	err = executor.StreamWithContext(ctx, opts)
	var exit utilexec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit) && exit.Exited():
		return int32(exit.ExitStatus()), nil
	}
	return 0, err
}

// sizeQueue hands terminal sizes to the streaming client until done.
type sizeQueue struct {
	ch   chan remotecommand.TerminalSize
	done <-chan struct{}
}

func newSizeQueue(done <-chan struct{}) *sizeQueue {
	return &sizeQueue{ch: make(chan remotecommand.TerminalSize, 8), done: done}
}

// push queues a size, dropping the oldest when the client lags: only the
// last size matters.
func (q *sizeQueue) push(width, height uint32) {
	s := remotecommand.TerminalSize{Width: uint16(width), Height: uint16(height)}
	for {
		select {
		case q.ch <- s:
			return
		default:
			select {
			case <-q.ch:
			default:
			}
		}
	}
}

// Next implements remotecommand.TerminalSizeQueue.
func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case s := <-q.ch:
		return &s
	case <-q.done:
		return nil
	}
}

// outputSender sends a session's output on the gRPC stream: one sender at a
// time, as gRPC requires, while stdout and stderr are copied apart.
type outputSender struct {
	mu   sync.Mutex
	send func(stderr bool, data []byte) error
}

func (o *outputSender) writer(stderr bool) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if err := o.send(stderr, append([]byte(nil), p...)); err != nil {
			return 0, err
		}
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// streamError gives a failed session's error its gRPC code.
func (m *member) streamError(err error, what string) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return m.memberError(err, "%s", what)
}
