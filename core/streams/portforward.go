package streams

import (
	"context"
	"errors"
	"fmt"
	"io"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// PortForward connects conn to start's TCP port inside the pod's network
// namespace through the runtime's PortForward stream: what conn reads is
// sent (then data_done at its end), what the port answers is written to
// conn. It returns nil when the runtime closes the connection, ctx's error
// when ctx ends. The goroutine reading conn ends at its next Read once
// PortForward has returned: the caller closes conn.
func PortForward(ctx context.Context, client runtimev1.RuntimeClient, start *runtimev1.PortForwardStart, conn io.ReadWriter) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.PortForward(ctx)
	if err != nil {
		return fromRuntime(ctx, err)
	}
	if err := stream.Send(&runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_Start{Start: start}}); err != nil {
		return fmt.Errorf("send port-forward start: %w", fromRuntime(ctx, err))
	}
	// One goroutine sends from here on: no lock needed.
	go pumpInput(conn, func(data []byte) error {
		return stream.Send(&runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_Data{Data: data}})
	}, func() error {
		return stream.Send(&runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_DataDone{DataDone: true}})
	})
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fromRuntime(ctx, err)
		}
		if err := write(conn, resp.GetData()); err != nil {
			return err
		}
	}
}
