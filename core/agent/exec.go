package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/status"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/fedlet/fedlet/core/nodeapi"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// execChunk is how much stdin goes into one message.
const execChunk = 32 * 1024

// ExecInContainer implements nodeapi.Execer over the runtime's Exec stream.
func (r *nodeRegistry) ExecInContainer(ctx context.Context, namespace, name, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	n, uid, ok := r.find(namespace, name)
	if !ok {
		return fmt.Errorf("pod %s/%s on this agent: %w", namespace, name, nodeapi.ErrNotFound)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := n.runtime.Exec(ctx)
	if err != nil {
		return fmt.Errorf("exec in %s/%s: %w", namespace, name, err)
	}
	// gRPC allows one sender at a time; stdin and resizes come from two goroutines.
	var sendMu sync.Mutex
	send := func(req *runtimev1.ExecRequest) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(req)
	}
	start := &runtimev1.ExecStart{Node: n.name, PodUid: uid, Container: container, Command: cmd, Tty: tty, Stdin: in != nil}
	if tty && resize != nil {
		start.Size = firstSize(ctx, resize)
	}
	err = send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Start{Start: start}})
	if err != nil {
		return fmt.Errorf("exec in %s/%s: %w", namespace, name, err)
	}
	// The pumps end when their source ends: the streaming library closes
	// both once this call has returned and the connection is gone.
	if in != nil {
		go pumpStdin(in, func(data []byte) error {
			return send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Stdin{Stdin: data}})
		}, func() {
			_ = send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_StdinDone{StdinDone: true}})
		})
	}
	if resize != nil {
		go func() {
			for size := range resize {
				_ = send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Resize{Resize: &runtimev1.TerminalSize{Width: uint32(size.Width), Height: uint32(size.Height)}}})
			}
		}()
	}
	return receiveExec(stream, out, errOut)
}

// firstSizeWait is how long a terminal command waits for the client's
// terminal size: kubectl sends it at once, and a command started before it
// would see a terminal of size 0.
const firstSizeWait = time.Second

func firstSize(ctx context.Context, resize <-chan remotecommand.TerminalSize) *runtimev1.TerminalSize {
	select {
	case size, ok := <-resize:
		if ok {
			return &runtimev1.TerminalSize{Width: uint32(size.Width), Height: uint32(size.Height)}
		}
	case <-time.After(firstSizeWait):
	case <-ctx.Done():
	}
	return nil
}

// pumpStdin sends what the caller types, in chunks, then says it ended.
func pumpStdin(in io.Reader, send func([]byte) error, done func()) {
	buf := make([]byte, execChunk)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if send(append([]byte(nil), buf[:n]...)) != nil {
				return
			}
		}
		if err != nil {
			done()
			return
		}
	}
}

// receiveExec copies the command's output until its exit code arrives.
func receiveExec(stream runtimev1.Runtime_ExecClient, out, errOut io.Writer) error {
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("the runtime ended the exec without an exit code")
		}
		if err != nil {
			return errors.New(status.Convert(err).Message())
		}
		var werr error
		switch r := resp.Response.(type) {
		case *runtimev1.ExecResponse_Stdout:
			werr = write(out, r.Stdout)
		case *runtimev1.ExecResponse_Stderr:
			werr = write(errOut, r.Stderr)
		case *runtimev1.ExecResponse_ExitCode:
			if r.ExitCode != 0 {
				return utilexec.CodeExitError{Err: fmt.Errorf("command exited with %d", r.ExitCode), Code: int(r.ExitCode)}
			}
			return nil
		}
		if werr != nil {
			return fmt.Errorf("the client went away: %w", werr)
		}
	}
}
