package kubernetes

import (
	"context"

	"google.golang.org/grpc"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// The container-level calls: a member cluster pulls images, makes sandboxes
// and runs containers itself, so each answers Unimplemented and says so.

func (b *Backend) PullImage(context.Context, *runtimev1.PullImageRequest) (*runtimev1.PullImageResponse, error) {
	return nil, wholePods("PullImage")
}

func (b *Backend) RunSandbox(context.Context, *runtimev1.RunSandboxRequest) (*runtimev1.Sandbox, error) {
	return nil, wholePods("RunSandbox")
}

func (b *Backend) RemoveSandbox(context.Context, *runtimev1.RemoveSandboxRequest) (*runtimev1.RemoveSandboxResponse, error) {
	return nil, wholePods("RemoveSandbox")
}

func (b *Backend) ListSandboxes(context.Context, *runtimev1.ListSandboxesRequest) (*runtimev1.ListSandboxesResponse, error) {
	return nil, wholePods("ListSandboxes")
}

func (b *Backend) StartContainer(context.Context, *runtimev1.StartContainerRequest) (*runtimev1.ContainerStatus, error) {
	return nil, wholePods("StartContainer")
}

func (b *Backend) StopContainer(context.Context, *runtimev1.StopContainerRequest) (*runtimev1.ContainerStatus, error) {
	return nil, wholePods("StopContainer")
}

func (b *Backend) RemoveContainer(context.Context, *runtimev1.RemoveContainerRequest) (*runtimev1.RemoveContainerResponse, error) {
	return nil, wholePods("RemoveContainer")
}

func (b *Backend) WatchContainers(*runtimev1.WatchContainersRequest, grpc.ServerStreamingServer[runtimev1.ContainerStatus]) error {
	return wholePods("WatchContainers")
}
