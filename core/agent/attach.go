package agent

import (
	"context"
	"errors"
	"fmt"
	"io"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/fedlet/fedlet/core/nodeapi"
	"github.com/fedlet/fedlet/core/streams"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// AttachContainer implements nodeapi.Attacher over the runtime's Attach
// stream.
func (r *nodeRegistry) AttachContainer(ctx context.Context, namespace, name, container string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	n, uid, ok := r.find(namespace, name)
	if !ok {
		return fmt.Errorf("pod %s/%s on this agent: %w", namespace, name, nodeapi.ErrNotFound)
	}
	stderr := writerOrNil(errOut)
	if stderr == nil {
		stderr = writerOrNil(out) // a terminal merges the streams
	}
	var opts []streams.Option
	if resize != nil {
		opts = append(opts, streams.WithResize(resize))
	}
	start := &runtimev1.AttachStart{Node: n.name, PodUid: uid, Container: container}
	err := streams.Attach(ctx, n.runtime, start, in, writerOrNil(out), stderr, opts...)
	if errors.Is(err, streams.ErrOutputClosed) {
		// The client went away (its connection is closed): the runtime's
		// session has ended with the call, nothing to report.
		return nil
	}
	return err
}
