package plugin

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// cniStatus turns a CNI plugin's error into the protocol's gRPC code:
// Unavailable for "try again later", FailedPrecondition for what the
// network's configuration must fix, InvalidArgument for a bad network
// namespace, Internal for the rest. The message says what was done and
// carries the plugin's own message.
func cniStatus(doing string, err error) error {
	code := codes.Internal
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		switch cniErr.Code {
		case types.ErrTryAgainLater:
			code = codes.Unavailable
		case types.ErrIncompatibleCNIVersion, types.ErrUnsupportedField, types.ErrInvalidNetworkConfig, types.ErrPluginNotAvailable:
			code = codes.FailedPrecondition
		case types.ErrInvalidNetNS:
			code = codes.InvalidArgument
		}
	}
	return status.Error(code, fmt.Sprintf("%s: %v", doing, err))
}
