package containerd

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcError gives err the gRPC code that says what went wrong, keeping its
// message (which says what was being done). Errors that carry a code already
// keep it.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

func codeOf(err error) codes.Code {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errdefs.IsNotFound(err):
		return codes.NotFound
	case errdefs.IsAlreadyExists(err):
		return codes.AlreadyExists
	case errdefs.IsInvalidArgument(err):
		return codes.InvalidArgument
	case errdefs.IsFailedPrecondition(err), errdefs.IsConflict(err):
		return codes.FailedPrecondition
	case errdefs.IsUnavailable(err):
		return codes.Unavailable
	case errdefs.IsNotImplemented(err):
		return codes.Unimplemented
	case errdefs.IsPermissionDenied(err):
		return codes.PermissionDenied
	case errdefs.IsUnauthorized(err):
		return codes.Unauthenticated
	case errdefs.IsResourceExhausted(err):
		return codes.ResourceExhausted
	case errdefs.IsAborted(err):
		return codes.Aborted
	case errdefs.IsDeadlineExceeded(err):
		return codes.DeadlineExceeded
	case errdefs.IsCanceled(err):
		return codes.Canceled
	}
	return codes.Internal
}

// statusf wraps err with what was being done and gives it its gRPC code.
func statusf(err error, format string, args ...any) error {
	return status.Error(codeOf(err), fmt.Sprintf(format, args...)+": "+messageOf(err))
}

// messageOf is err's message without the "rpc error: code = ..." dress of a
// bare gRPC status.
func messageOf(err error) string {
	if st, ok := status.FromError(err); ok && st.Err().Error() == err.Error() {
		return st.Message()
	}
	return err.Error()
}

// isTransient says whether err comes from containerd being unreachable or
// the call being cut short, rather than from the container itself.
func isTransient(err error) bool {
	switch codeOf(err) {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded:
		return true
	}
	return false
}

// isNotFound works for both the client's errors and raw gRPC ones (from the
// service clients).
func isNotFound(err error) bool {
	return codeOf(err) == codes.NotFound
}
