package streams

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Attach connects to a running container's own streams through the
// runtime's Attach stream, until the container exits (nil) or ctx ends
// (ctx's error). stdin (nil for none) goes to the container's stdin
// (start.Stdin is set from it); its output goes to stdout and stderr (nil
// discards). As with Exec, the goroutine copying stdin ends at its next
// Read once Attach has returned.
func Attach(ctx context.Context, client runtimev1.RuntimeClient, start *runtimev1.AttachStart, stdin io.Reader, stdout, stderr io.Writer, opts ...Option) error {
	o := collect(opts)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Attach(ctx)
	if err != nil {
		return fromRuntime(ctx, err)
	}
	start = proto.CloneOf(start)
	start.Stdin = stdin != nil
	s := &sender[runtimev1.AttachRequest]{send: stream.Send}
	if err := s.Send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Start{Start: start}}); err != nil {
		return fmt.Errorf("send attach start: %w", fromRuntime(ctx, err))
	}
	if stdin != nil {
		go pumpInput(stdin, func(data []byte) error {
			return s.Send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Stdin{Stdin: data}})
		}, func() error {
			return s.Send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_StdinDone{StdinDone: true}})
		})
	}
	if o.resize != nil {
		go pumpResizes(ctx, o.resize, func(size *runtimev1.TerminalSize) error {
			return s.Send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Resize{Resize: size}})
		})
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil // the container exited
		}
		if err != nil {
			return fromRuntime(ctx, err)
		}
		var werr error
		switch r := resp.Response.(type) {
		case *runtimev1.AttachResponse_Stdout:
			werr = write(stdout, r.Stdout)
		case *runtimev1.AttachResponse_Stderr:
			werr = write(stderr, r.Stderr)
		}
		if werr != nil {
			return werr
		}
	}
}
