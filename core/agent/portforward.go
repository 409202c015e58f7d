package agent

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/fedlet/fedlet/core/nodeapi"
	"github.com/fedlet/fedlet/core/streams"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// PortForward implements nodeapi.PortForwarder over the runtime's
// PortForward stream: one stream per forwarded connection.
func (r *nodeRegistry) PortForward(ctx context.Context, namespace, name string, port int32, conn io.ReadWriteCloser) error {
	defer conn.Close()
	n, uid, ok := r.find(namespace, name)
	if !ok {
		return fmt.Errorf("pod %s/%s on this agent: %w", namespace, name, nodeapi.ErrNotFound)
	}
	start := &runtimev1.PortForwardStart{Node: n.name, PodUid: uid, Port: port}
	err := streams.PortForward(ctx, n.runtime, start, conn)
	if err == nil || errors.Is(err, streams.ErrOutputClosed) {
		return nil // the connection closed, on either side
	}
	return fmt.Errorf("forward port %d of %s/%s: %w", port, namespace, name, err)
}
