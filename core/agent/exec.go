package agent

import (
	"context"
	"fmt"
	"io"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/fedlet/fedlet/core/nodeapi"
	"github.com/fedlet/fedlet/core/streams"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// ExecInContainer implements nodeapi.Execer over the runtime's Exec stream.
func (r *nodeRegistry) ExecInContainer(ctx context.Context, namespace, name, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	n, uid, ok := r.find(namespace, name)
	if !ok {
		return fmt.Errorf("pod %s/%s on this agent: %w", namespace, name, nodeapi.ErrNotFound)
	}
	start := &runtimev1.ExecStart{Node: n.name, PodUid: uid, Container: container, Command: cmd, Tty: tty}
	var opts []streams.Option
	if resize != nil {
		opts = append(opts, streams.WithResize(resize))
	}
	// The streaming library closes in, out and errOut once this call has
	// returned and the connection is gone, which ends the stdin pump.
	code, err := streams.Exec(ctx, n.runtime, start, in, writerOrNil(out), writerOrNil(errOut), opts...)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command exited with %d", code), Code: int(code)}
	}
	return nil
}

// writerOrNil keeps a missing stream missing: a nil io.WriteCloser passed
// as an io.Writer stays nil.
func writerOrNil(w io.WriteCloser) io.Writer {
	if w == nil {
		return nil
	}
	return w
}
