package sdk

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The errors below are the answers the protocols ask for, worded once. The
// agent acts on their gRPC codes; their messages reach the pod's status and
// kubectl, so they name what was asked for.

// InvalidArgument is the answer to a request that lacks or misforms a field:
// codes.InvalidArgument, with a message "field: problem" that names the
// field by its path in the request ("pod.uid", "container.image").
func InvalidArgument(field, problem string) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, problem)
}

// NodeNotServed is the answer to a call for a node the plugin was not
// configured to serve: codes.NotFound, since the protocols' NotFound is for
// what the plugin does not know.
func NodeNotServed(node string) error {
	return status.Errorf(codes.NotFound, "node %q is not served by this plugin", node)
}

// NotConfigured is the answer to a call that comes before the plugin's
// first successful Configure: codes.FailedPrecondition.
func NotConfigured() error {
	return status.Error(codes.FailedPrecondition, "plugin is not configured: call Configure first")
}

// ContainerNotFound is the answer to a call about a container the node does
// not have (StopContainer, ContainerLogs, Exec, Attach): codes.NotFound,
// which the node API turns into 404 for kubectl.
func ContainerNotFound(podUID, name string) error {
	return status.Errorf(codes.NotFound, "container %s of pod %s not found", name, podUID)
}

// ContainerNotRunning is the answer to Exec or Attach of a container that
// exists but does not run: codes.FailedPrecondition.
func ContainerNotRunning(podUID, name string) error {
	return status.Errorf(codes.FailedPrecondition, "container %s of pod %s is not running", name, podUID)
}

// ContainerWithoutStdin is the answer to an Attach that asks for stdin of a
// container started without it: codes.FailedPrecondition.
func ContainerWithoutStdin(podUID, name string) error {
	return status.Errorf(codes.FailedPrecondition, "container %s of pod %s was not started with stdin", name, podUID)
}
