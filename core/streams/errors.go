package streams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/status"
)

// ErrOutputClosed is wrapped by the error of a call whose output writer
// failed: the caller's client went away.
var ErrOutputClosed = errors.New("the output went away")

// ErrNoExitCode is returned by Exec when the runtime ended the stream
// without sending the command's exit code.
var ErrNoExitCode = errors.New("the runtime ended the exec without an exit code")

// runtimeError is an error the runtime answered: its text is the runtime's
// message, without gRPC's "rpc error: code = ..." prefix, and it keeps the
// status for status.Code.
type runtimeError struct{ st *status.Status }

func (e runtimeError) Error() string              { return e.st.Message() }
func (e runtimeError) GRPCStatus() *status.Status { return e.st }

// fromRuntime turns an error of the stream into what a call returns: the
// context's own error once ctx has ended (the runtime's answer to a
// cancelled call says nothing more), else the runtime's status.
func fromRuntime(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The runtime learns the deadline too, and its side may end the stream
	// a moment before this side's timer fires.
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return runtimeError{st: status.Convert(err)}
}

// write writes data to w; a nil w discards it.
func write(w io.Writer, data []byte) error {
	if w == nil {
		return nil
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("%w: %w", ErrOutputClosed, err)
	}
	return nil
}
