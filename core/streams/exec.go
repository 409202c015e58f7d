package streams

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Exec runs start's command in a running container through the runtime's
// Exec stream and returns its exit code once it exits. stdin (nil for none)
// is copied to the command's stdin (start.Stdin is set from it); its output
// goes to stdout and stderr (nil discards; with start.Tty the runtime sends
// one stream, as stdout). A non-zero exit is not an error: the caller
// judges the code. When ctx ends the command is ended and Exec returns
// ctx's error.
//
// Exec does not wait for stdin's Read to return: the goroutine copying it
// ends at its next Read once Exec has returned, so the caller closes a
// stdin that may block.
func Exec(ctx context.Context, client runtimev1.RuntimeClient, start *runtimev1.ExecStart, stdin io.Reader, stdout, stderr io.Writer, opts ...Option) (int32, error) {
	o := collect(opts)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Exec(ctx)
	if err != nil {
		return 0, fromRuntime(ctx, err)
	}
	start = proto.CloneOf(start)
	start.Stdin = stdin != nil
	if start.GetTty() && start.GetSize() == nil && o.resize != nil {
		start.Size = firstSize(ctx, o.resize)
	}
	s := &sender[runtimev1.ExecRequest]{send: stream.Send}
	if err := s.Send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Start{Start: start}}); err != nil {
		return 0, fmt.Errorf("send exec start: %w", fromRuntime(ctx, err))
	}
	if stdin == nil && o.resize == nil {
		_ = stream.CloseSend()
	}
	if stdin != nil {
		go pumpInput(stdin, func(data []byte) error {
			return s.Send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Stdin{Stdin: data}})
		}, func() error {
			return s.Send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_StdinDone{StdinDone: true}})
		})
	}
	if o.resize != nil {
		go pumpResizes(ctx, o.resize, func(size *runtimev1.TerminalSize) error {
			return s.Send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Resize{Resize: size}})
		})
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return 0, ErrNoExitCode
		}
		if err != nil {
			return 0, fromRuntime(ctx, err)
		}
		var werr error
		switch r := resp.Response.(type) {
		case *runtimev1.ExecResponse_Stdout:
			werr = write(stdout, r.Stdout)
		case *runtimev1.ExecResponse_Stderr:
			werr = write(stderr, r.Stderr)
		case *runtimev1.ExecResponse_ExitCode:
			return r.ExitCode, nil
		}
		if werr != nil {
			return 0, werr
		}
	}
}
