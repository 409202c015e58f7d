package agent

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/status"

	"github.com/fedlet/fedlet/core/nodeapi"
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := n.runtime.PortForward(ctx)
	if err != nil {
		return fmt.Errorf("forward port %d of %s/%s: %w", port, namespace, name, err)
	}
	start := &runtimev1.PortForwardStart{Node: n.name, PodUid: uid, Port: port}
	if err := stream.Send(&runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_Start{Start: start}}); err != nil {
		return fmt.Errorf("forward port %d of %s/%s: %w", port, namespace, name, err)
	}
	go pumpStdin(conn, func(data []byte) error {
		return stream.Send(&runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_Data{Data: data}})
	}, func() {
		_ = stream.Send(&runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_DataDone{DataDone: true}})
	})
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("forward port %d of %s/%s: %s", port, namespace, name, status.Convert(err).Message())
		}
		if _, err := conn.Write(resp.GetData()); err != nil {
			return nil // the client went away
		}
	}
}
