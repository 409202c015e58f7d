package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// memberError says what was being done in which member, with the gRPC code
// the agent acts on. The member's own message is kept whole: when the
// member refuses a pod (a quota, an admission plugin, validation), it is
// what the agent puts in the pod's status.
func (m *member) memberError(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return status.Error(st.Code(), fmt.Sprintf(format, args...)+": "+st.Message())
	}
	what := fmt.Sprintf(format, args...)
	return status.Error(codeOf(err), fmt.Sprintf("%s in the member cluster of node %s: %v", what, m.cfg.Node, err))
}

// codeOf maps a client-go error to the gRPC code that tells the agent what
// to do: retry (Unavailable), give up with the reason (FailedPrecondition,
// InvalidArgument, PermissionDenied), or treat as gone (NotFound).
func codeOf(err error) codes.Code {
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case apierrors.IsNotFound(err):
		return codes.NotFound
	case apierrors.IsAlreadyExists(err):
		return codes.AlreadyExists
	case apierrors.IsConflict(err):
		// Someone changed the object meanwhile: the agent's retry will do.
		return codes.Aborted
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsRequestEntityTooLargeError(err):
		return codes.InvalidArgument
	case apierrors.IsUnauthorized(err):
		return codes.Unauthenticated
	case apierrors.IsForbidden(err):
		switch {
		case strings.Contains(msg, "exceeded quota"):
			// Room may come free: the pod waits with the reason.
			return codes.FailedPrecondition
		case strings.Contains(msg, "being terminated"),
			strings.Contains(msg, "error looking up service account"):
			// A namespace going away or just made: a later try succeeds.
			return codes.Unavailable
		}
		return codes.PermissionDenied
	case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err):
		return codes.Unavailable
	}
	var apiStatus apierrors.APIStatus
	if errors.As(err, &apiStatus) {
		return codes.Internal
	}
	// Not an answer of the API server: it could not be reached.
	return codes.Unavailable
}
