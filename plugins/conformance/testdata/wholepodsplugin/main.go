// Command wholepodsplugin is the whole-pod plugin the kit's tests launch:
// the in-memory sdktest.WholePods, which runs pods in memory and no
// containers, with the container-level calls answering Unimplemented as a
// backend that runs whole pods does. It is served without the SDK's request
// rules (sdk.WithoutRequestRules), so that what the kit finds is what
// sdktest.WholePods checks itself: the kit's tests see it report the rules
// a plugin breaks (those of the streams it does not implement).
//
// Environment:
//
//	WHOLEPODS_CONTAINER_CALLS=1  leave the container-level calls to
//	                             sdktest.Runtime, which answers sandboxes
package main

import (
	"context"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
	"github.com/fedlet/fedlet/plugins/sdk/sdktest"
)

// wholePods answers the container-level calls Unimplemented.
type wholePods struct {
	*sdktest.WholePods
}

func unimplemented(call string) error {
	return status.Errorf(codes.Unimplemented, "%s: this plugin runs whole pods", call)
}

func (wholePods) PullImage(context.Context, *runtimev1.PullImageRequest) (*runtimev1.PullImageResponse, error) {
	return nil, unimplemented("PullImage")
}

func (wholePods) RunSandbox(context.Context, *runtimev1.RunSandboxRequest) (*runtimev1.Sandbox, error) {
	return nil, unimplemented("RunSandbox")
}

func (wholePods) RemoveSandbox(context.Context, *runtimev1.RemoveSandboxRequest) (*runtimev1.RemoveSandboxResponse, error) {
	return nil, unimplemented("RemoveSandbox")
}

func (wholePods) ListSandboxes(context.Context, *runtimev1.ListSandboxesRequest) (*runtimev1.ListSandboxesResponse, error) {
	return nil, unimplemented("ListSandboxes")
}

func (wholePods) StartContainer(context.Context, *runtimev1.StartContainerRequest) (*runtimev1.ContainerStatus, error) {
	return nil, unimplemented("StartContainer")
}

func (wholePods) StopContainer(context.Context, *runtimev1.StopContainerRequest) (*runtimev1.ContainerStatus, error) {
	return nil, unimplemented("StopContainer")
}

func (wholePods) RemoveContainer(context.Context, *runtimev1.RemoveContainerRequest) (*runtimev1.RemoveContainerResponse, error) {
	return nil, unimplemented("RemoveContainer")
}

func (wholePods) WatchContainers(*runtimev1.WatchContainersRequest, grpc.ServerStreamingServer[runtimev1.ContainerStatus]) error {
	return unimplemented("WatchContainers")
}

func main() {
	impl := sdktest.NewWholePods("wholepodsplugin", "0.0.1")
	if os.Getenv("WHOLEPODS_CONTAINER_CALLS") != "" {
		sdk.ServeRuntime(impl, sdk.WithoutRequestRules())
		return
	}
	sdk.ServeRuntime(wholePods{impl}, sdk.WithoutRequestRules())
}
