package containerd

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"k8s.io/cri-client/pkg/logs"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/runtime/containerd/logdriver"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// Attach implements runtimev1.RuntimeServer. Output is followed from the
// attempt's log, from the moment of attaching, so that no process but the
// container's own log driver or stdio keeper reads its streams; stdin is
// written to its stdin FIFO, which the shim holds open.
func (b *Backend) Attach(stream grpc.BidiStreamingServer[runtimev1.AttachRequest, runtimev1.AttachResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	s, err := b.sessionFor(start.GetNode())
	if err != nil {
		return err
	}
	return grpcError(s.attach(s.withNamespace(stream.Context()), start, stream))
}

func (s *session) attach(ctx context.Context, start *runtimev1.AttachStart, stream grpc.BidiStreamingServer[runtimev1.AttachRequest, runtimev1.AttachResponse]) error {
	uid, name := start.GetPodUid(), start.GetContainer()
	if err := validateName("pod_uid", uid); err != nil {
		return err
	}
	if err := validateName("container", name); err != nil {
		return err
	}
	task, _, err := s.runningTask(ctx, &runtimev1.ExecStart{Node: start.GetNode(), PodUid: uid, Container: name})
	if err != nil {
		return err
	}
	ctr, err := s.client.ContainerService().Get(ctx, task.ID())
	if err != nil {
		return statusf(err, "read container %s", name)
	}
	var stdin *os.File
	if start.GetStdin() {
		if ctr.Labels[labelStdin] == "" {
			return sdk.ContainerWithoutStdin(uid, name)
		}
		// The shim reads the FIFO while the container's stdin is open: with
		// no reader the open fails at once rather than hanging.
		stdin, err = os.OpenFile(filepath.Join(s.stdioDir(uid, ctr.ID), logdriver.StdinFIFO), os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return status.Errorf(codes.FailedPrecondition, "stdin of container %s of pod %s is closed: %v", name, uid, err)
		}
		defer func() {
			_ = stdin.Close()
			if ctr.Labels[labelStdin] == "once" {
				// The container's stdin ends with the first attachment, however it ends.
				_ = task.CloseIO(context.WithoutCancel(ctx), client.WithStdinCloser)
			}
		}()
	}

	// Output from the moment of attaching: the log's entries from now on,
	// followed. The moment is taken before any stdin is written, so that what
	// the container answers to it is never missed, however late the reader
	// opens the file.
	attached := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer cancel() // the caller hung up
		for {
			req, err := stream.Recv()
			if err != nil {
				return
			}
			switch r := req.Request.(type) {
			case *runtimev1.AttachRequest_Stdin:
				if stdin != nil {
					_, _ = stdin.Write(r.Stdin)
				}
			case *runtimev1.AttachRequest_StdinDone:
				if stdin != nil {
					_ = stdin.Close()
					if ctr.Labels[labelStdin] == "once" {
						_ = task.CloseIO(ctx, client.WithStdinCloser)
					}
				}
			case *runtimev1.AttachRequest_Resize:
				_ = task.Resize(ctx, r.Resize.GetWidth(), r.Resize.GetHeight())
			}
		}
	}()

	l := s.attemptLog(s.logPath(uid, name, labelAttempt(ctr.Labels)), ctr.ID)
	stdout := streamWriter{send: stream.Send, wrap: func(data []byte) *runtimev1.AttachResponse {
		return &runtimev1.AttachResponse{Response: &runtimev1.AttachResponse_Stdout{Stdout: data}}
	}}
	stderr := streamWriter{send: stream.Send, wrap: func(data []byte) *runtimev1.AttachResponse {
		return &runtimev1.AttachResponse{Response: &runtimev1.AttachResponse_Stderr{Stderr: data}}
	}}
	return l.read(ctx, &logs.LogOptions{Follow: true, Since: attached}, -1, stdout, stderr)
}

// streamWriter sends each line the log reader writes, as it comes, in the
// response wrap makes of it. The reader writes from one goroutine.
type streamWriter struct {
	wrap func([]byte) *runtimev1.AttachResponse
	send func(*runtimev1.AttachResponse) error
}

func (w streamWriter) Write(p []byte) (int, error) {
	if err := w.send(w.wrap(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
