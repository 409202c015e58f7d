package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// Exec implements runtimev1.RuntimeServer: it runs a command beside the
// container's main process, in its namespaces, with its environment.
// execOutputDrain is how long an exec's output is still read after its
// command has exited.
const execOutputDrain = 2 * time.Second

func (b *Backend) Exec(stream grpc.BidiStreamingServer[runtimev1.ExecRequest, runtimev1.ExecResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	s, err := b.sessionFor(start.GetNode())
	if err != nil {
		return err
	}
	return grpcError(s.exec(s.withNamespace(stream.Context()), start, stream))
}

func (s *session) exec(ctx context.Context, start *runtimev1.ExecStart, stream grpc.BidiStreamingServer[runtimev1.ExecRequest, runtimev1.ExecResponse]) error {
	if err := validateName("pod_uid", start.GetPodUid()); err != nil {
		return err
	}
	if err := validateName("container", start.GetContainer()); err != nil {
		return err
	}
	task, spec, err := s.runningTask(ctx, start)
	if err != nil {
		return err
	}

	process := *spec.Process
	process.Args = start.GetCommand()
	process.Terminal = start.GetTty()
	if size := start.GetSize(); process.Terminal && size != nil {
		process.ConsoleSize = &specs.Box{Height: uint(size.GetHeight()), Width: uint(size.GetWidth())}
	}
	out := &execOutput{stream: stream}
	var stdin io.Reader
	var stdinW *io.PipeWriter
	// The shim keeps the command's stdin open until told: once the caller's
	// stdin has ended and all of it is copied, closeStdin tells it.
	started := make(chan client.Process, 1)
	if start.GetStdin() {
		r, w := io.Pipe()
		stdin, stdinW = &eofReader{r: r, atEOF: func() {
			if proc, ok := <-started; ok {
				_ = proc.CloseIO(context.WithoutCancel(ctx), client.WithStdinCloser)
			}
		}}, w
	}
	fifos := filepath.Join(s.cfg.StateDir, "fifo")
	if err := os.MkdirAll(fifos, 0o700); err != nil {
		return statusf(err, "create exec fifo directory")
	}
	ioOpts := []cio.Opt{cio.WithStreams(stdin, out.writer(stdoutStream), out.writer(stderrStream)), cio.WithFIFODir(fifos)}
	if process.Terminal {
		ioOpts = append(ioOpts, cio.WithTerminal)
	}
	proc, err := task.Exec(ctx, execID(), &process, cio.NewCreator(ioOpts...))
	if err != nil {
		return statusf(err, "exec in container %s of pod %s", start.GetContainer(), start.GetPodUid())
	}
	// Cleanup must happen even when the caller has gone: a fresh context.
	cleanup := context.WithoutCancel(ctx)
	defer func() { _, _ = proc.Delete(cleanup, client.WithProcessKill) }()
	exited, err := proc.Wait(cleanup)
	if err != nil {
		return statusf(err, "wait for exec")
	}
	if err := proc.Start(ctx); err != nil {
		close(started)
		return statusf(err, "start exec in container %s of pod %s", start.GetContainer(), start.GetPodUid())
	}
	started <- proc

	// The caller's stdin and resizes, until it hangs up; the stream ends
	// when this handler returns, which ends the loop.
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				if stdinW != nil {
					stdinW.Close()
				}
				return
			}
			switch r := req.Request.(type) {
			case *runtimev1.ExecRequest_Stdin:
				if stdinW != nil {
					_, _ = stdinW.Write(r.Stdin)
				}
			case *runtimev1.ExecRequest_StdinDone:
				if stdinW != nil {
					stdinW.Close()
				}
			case *runtimev1.ExecRequest_Resize:
				_ = proc.Resize(ctx, r.Resize.GetWidth(), r.Resize.GetHeight())
			}
		}
	}()

	select {
	case st := <-exited:
		// All output is sent before the exit code; but a child the command
		// left running holds its stdout open for as long as it lives, and
		// must not hold up a hook or a probe with it.
		drained := make(chan struct{})
		go func() {
			proc.IO().Wait()
			close(drained)
		}()
		select {
		case <-drained:
		case <-time.After(execOutputDrain):
		}
		return out.send(&runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_ExitCode{ExitCode: int32(st.ExitCode())}})
	case <-ctx.Done():
		_ = proc.Kill(cleanup, syscall.SIGKILL)
		return ctx.Err()
	}
}

// runningTask finds the task of the container's newest attempt, and its spec.
func (s *session) runningTask(ctx context.Context, start *runtimev1.ExecStart) (client.Task, *specs.Spec, error) {
	attempts, err := s.attempts(ctx, start.GetNode(), start.GetPodUid(), start.GetContainer())
	if err != nil {
		return nil, nil, err
	}
	if len(attempts) == 0 {
		return nil, nil, sdk.ContainerNotFound(start.GetPodUid(), start.GetContainer())
	}
	ctr, err := s.client.LoadContainer(ctx, attempts[len(attempts)-1].ID)
	if err != nil {
		return nil, nil, statusf(err, "load container %s", start.GetContainer())
	}
	notRunning := sdk.ContainerNotRunning(start.GetPodUid(), start.GetContainer())
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, nil, notRunning
	}
	if err != nil {
		return nil, nil, statusf(err, "task of container %s", start.GetContainer())
	}
	if st, err := task.Status(ctx); err != nil || st.Status != client.Running {
		return nil, nil, notRunning
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, nil, statusf(err, "spec of container %s", start.GetContainer())
	}
	return task, spec, nil
}

func execID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "exec-" + hex.EncodeToString(b)
}

type outputStream int

const (
	stdoutStream outputStream = iota
	stderrStream
)

// execOutput sends the command's output on the stream; gRPC allows one
// sender at a time and stdout and stderr are copied by two goroutines.
type execOutput struct {
	mu     sync.Mutex
	stream grpc.BidiStreamingServer[runtimev1.ExecRequest, runtimev1.ExecResponse]
}

func (o *execOutput) send(resp *runtimev1.ExecResponse) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stream.Send(resp)
}

func (o *execOutput) writer(which outputStream) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		data := append([]byte(nil), p...)
		resp := &runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_Stdout{Stdout: data}}
		if which == stderrStream {
			resp = &runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_Stderr{Stderr: data}}
		}
		if err := o.send(resp); err != nil {
			return 0, err
		}
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// eofReader calls atEOF once, when r is exhausted.
type eofReader struct {
	r     io.Reader
	atEOF func()
	once  sync.Once
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.once.Do(e.atEOF)
	}
	return n, err
}
