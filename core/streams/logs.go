package streams

import (
	"context"
	"errors"
	"io"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Logs writes a container's log, as the runtime's ContainerLogs streams it,
// to w: until the log ends (nil; with req.Follow, once the container has
// exited and its last line is written) or ctx ends (ctx's error).
func Logs(ctx context.Context, client runtimev1.RuntimeClient, req *runtimev1.ContainerLogsRequest, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.ContainerLogs(ctx, req)
	if err != nil {
		return fromRuntime(ctx, err)
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fromRuntime(ctx, err)
		}
		if err := write(w, chunk.GetData()); err != nil {
			return err
		}
	}
}
