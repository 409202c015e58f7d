package kubernetes

import (
	"context"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/remotecommand"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// Exec runs a command in a container of a member pod through the member's
// pods/exec: the caller's stdin, stdin_done and resizes go to the session,
// its stdout, stderr (one stream with a terminal) and exit code come back.
func (b *Backend) Exec(stream grpc.BidiStreamingServer[runtimev1.ExecRequest, runtimev1.ExecResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	m, err := b.memberFor(start.GetNode())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	uid, name := start.GetPodUid(), start.GetContainer()
	pod, _, err := m.container(ctx, uid, name)
	if err != nil {
		return err
	}
	if err := requireRunning(pod, name, uid); err != nil {
		return err
	}
	tty := start.GetTty()
	u := m.subresourceURL(pod, "exec", &corev1.PodExecOptions{
		Container: name,
		Command:   start.GetCommand(),
		Stdin:     start.GetStdin(),
		Stdout:    true,
		Stderr:    !tty,
		TTY:       tty,
	})
	out := &outputSender{send: func(stderr bool, data []byte) error {
		if stderr {
			return stream.Send(&runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_Stderr{Stderr: data}})
		}
		return stream.Send(&runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_Stdout{Stdout: data}})
	}}
	sizes := newSizeQueue(ctx.Done())
	if size := start.GetSize(); tty && size != nil {
		sizes.push(size.GetWidth(), size.GetHeight())
	}
	in := newInput(start.GetStdin())
	defer in.close()
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				in.end()
				return
			}
			switch r := req.Request.(type) {
			case *runtimev1.ExecRequest_Stdin:
				in.write(r.Stdin)
			case *runtimev1.ExecRequest_StdinDone:
				in.end()
			case *runtimev1.ExecRequest_Resize:
				sizes.push(r.Resize.GetWidth(), r.Resize.GetHeight())
			}
		}
	}()

	code, err := m.stream(ctx, u, sessionOptions(in, out, tty, sizes))
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	if err != nil {
		return m.streamError(err, "exec in container "+name+" of pod "+uid)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	return stream.Send(&runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_ExitCode{ExitCode: code}})
}

// Attach connects to a running container's own streams through the
// member's pods/attach. Whether the container has a terminal is its spec's
// (tty); stdin is refused unless it was started with stdin. The stream
// ends when the container exits or the caller goes.
func (b *Backend) Attach(stream grpc.BidiStreamingServer[runtimev1.AttachRequest, runtimev1.AttachResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	m, err := b.memberFor(start.GetNode())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	uid, name := start.GetPodUid(), start.GetContainer()
	pod, c, err := m.container(ctx, uid, name)
	if err != nil {
		return err
	}
	if err := requireRunning(pod, name, uid); err != nil {
		return err
	}
	if start.GetStdin() && !c.Stdin {
		return sdk.ContainerWithoutStdin(uid, name)
	}
	tty := c.TTY
	u := m.subresourceURL(pod, "attach", &corev1.PodAttachOptions{
		Container: name,
		Stdin:     start.GetStdin(),
		Stdout:    true,
		Stderr:    !tty,
		TTY:       tty,
	})
	out := &outputSender{send: func(stderr bool, data []byte) error {
		if stderr {
			return stream.Send(&runtimev1.AttachResponse{Response: &runtimev1.AttachResponse_Stderr{Stderr: data}})
		}
		return stream.Send(&runtimev1.AttachResponse{Response: &runtimev1.AttachResponse_Stdout{Stdout: data}})
	}}
	sizes := newSizeQueue(ctx.Done())
	in := newInput(start.GetStdin())
	defer in.close()
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				in.end()
				return
			}
			switch r := req.Request.(type) {
			case *runtimev1.AttachRequest_Stdin:
				in.write(r.Stdin)
			case *runtimev1.AttachRequest_StdinDone:
				in.end()
			case *runtimev1.AttachRequest_Resize:
				sizes.push(r.Resize.GetWidth(), r.Resize.GetHeight())
			}
		}
	}()

	_, err = m.stream(ctx, u, sessionOptions(in, out, tty, sizes))
	if ctx.Err() != nil {
		return nil // the caller went
	}
	return m.streamError(err, "attach to container "+name+" of pod "+uid)
}

// sessionOptions are the streams of an exec or attach session.
func sessionOptions(in *input, out *outputSender, tty bool, sizes *sizeQueue) remotecommand.StreamOptions {
	opts := remotecommand.StreamOptions{Stdout: out.writer(false), Tty: tty}
	if !tty {
		opts.Stderr = out.writer(true)
	}
	if in.r != nil {
		opts.Stdin = in.r
	}
	if tty {
		opts.TerminalSizeQueue = sizes
	}
	return opts
}

// input is a session's stdin, fed from the gRPC stream; nil reader when
// the caller sends none.
type input struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func newInput(enabled bool) *input {
	if !enabled {
		return &input{}
	}
	r, w := io.Pipe()
	return &input{r: r, w: w}
}

func (in *input) write(p []byte) {
	if in.w != nil {
		_, _ = in.w.Write(p)
	}
}

// end is the end of the caller's stdin: the session's stdin sees EOF.
func (in *input) end() {
	if in.w != nil {
		_ = in.w.Close()
	}
}

// close releases the client's stdin copier once the session is over.
func (in *input) close() {
	if in.r != nil {
		_ = in.r.Close()
	}
}
