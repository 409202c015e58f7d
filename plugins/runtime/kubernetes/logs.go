package kubernetes

import (
	"errors"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// logChunkSize is the most output one LogChunk carries.
const logChunkSize = 32 * 1024

// ContainerLogs streams a container's output through the member's
// pods/log, with the options of `kubectl logs` passed on as they are.
func (b *Backend) ContainerLogs(req *runtimev1.ContainerLogsRequest, stream grpc.ServerStreamingServer[runtimev1.LogChunk]) error {
	m, err := b.memberFor(req.GetNode())
	if err != nil {
		return err
	}
	if req.GetLimitBytes() < 0 {
		return sdk.InvalidArgument("limit_bytes", "must not be negative")
	}
	ctx := stream.Context()
	uid, name := req.GetPodUid(), req.GetContainer()
	pod, _, err := m.container(ctx, uid, name)
	if err != nil {
		return err
	}
	opts := &corev1.PodLogOptions{
		Container:  name,
		Follow:     req.GetFollow(),
		Previous:   req.GetPrevious(),
		Timestamps: req.GetTimestamps(),
	}
	if n := req.GetTailLines(); n >= 0 {
		opts.TailLines = &n
	}
	if n := req.GetLimitBytes(); n > 0 {
		opts.LimitBytes = &n
	}
	if n := req.GetSinceUnixNano(); n > 0 {
		since := metav1.NewTime(time.Unix(0, n))
		opts.SinceTime = &since
	}
	rc, err := m.client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, opts).Stream(ctx)
	if err != nil {
		return m.logsError(err, req)
	}
	defer rc.Close()
	buf := make([]byte, logChunkSize)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if serr := stream.Send(&runtimev1.LogChunk{Data: append([]byte(nil), buf[:n]...)}); serr != nil {
				return serr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil && ctx.Err() != nil:
			return nil // the caller went
		case err != nil:
			return m.memberError(err, "read the log of container %s of pod %s", name, uid)
		}
	}
}

// logsError says why the member would not give a log. The kubelet answers
// 400 for a container with no log (yet, or no previous attempt): NotFound
// when there is no such attempt, FailedPrecondition when it has not started.
func (m *member) logsError(err error, req *runtimev1.ContainerLogsRequest) error {
	what := "container " + req.GetContainer() + " of pod " + req.GetPodUid()
	if apierrors.IsBadRequest(err) {
		msg := err.Error()
		code := codes.FailedPrecondition
		if req.GetPrevious() || strings.Contains(msg, "not found") {
			code = codes.NotFound
		}
		return status.Errorf(code, "log of %s in the member cluster of node %s: %s", what, m.cfg.Node, msg)
	}
	return m.memberError(err, "read the log of %s", what)
}
