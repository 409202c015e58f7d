// Package example is a small runtime plugin, written as a plugin author
// would write one: containers run with runc, images are pulled without a
// daemon, and the SDK (plugins/sdk/...) does the rest. It passes the
// container-level conformance suite; docs/plugins.md counts its lines.
package example

import (
	"context"
	"encoding/json"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/hostnode"
	"github.com/fedlet/fedlet/plugins/sdk/imagestore"
	"github.com/fedlet/fedlet/plugins/sdk/ociruntime"
	"github.com/fedlet/fedlet/plugins/sdk/ocispec"
	"github.com/fedlet/fedlet/plugins/sdk/podstore"
)

// Runtime serves the runtime protocol with runc. All it knows is on disk,
// under its state directory, so a fresh Runtime adopts what another ran.
type Runtime struct {
	runtimev1.UnimplementedRuntimeServer
	pods   *podstore.Store
	images *imagestore.Store
	runc   ociruntime.Runtime
}

// New returns a Runtime; Configure says where it keeps its state.
func New() *Runtime { return &Runtime{} }

func (r *Runtime) Describe(context.Context, *runtimev1.DescribeRequest) (*runtimev1.DescribeResponse, error) {
	return &runtimev1.DescribeResponse{Name: "example", Version: "0.1.0"}, nil
}

// Configure reads {"stateDir": "..."}.
func (r *Runtime) Configure(_ context.Context, req *runtimev1.ConfigureRequest) (*runtimev1.ConfigureResponse, error) {
	cfg := struct{ StateDir string }{"/var/lib/fedlet-runtime-example"}
	if len(req.GetConfig()) > 0 {
		if err := json.Unmarshal(req.GetConfig(), &cfg); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "config: %v", err)
		}
	}
	r.runc = ociruntime.Runtime{Root: filepath.Join(cfg.StateDir, "runc")}
	images, err := imagestore.New(filepath.Join(cfg.StateDir, "images"))
	if err != nil {
		return nil, err
	}
	pods, err := podstore.New(cfg.StateDir, podstore.Hooks{ExitReason: oomKilled, Release: r.release})
	if err != nil {
		return nil, err
	}
	r.images, r.pods = images, pods
	return &runtimev1.ConfigureResponse{}, ociruntime.BecomeSubreaper() // for Exec
}

// oomKilled is the reason of an exit the memory limit caused.
func oomKilled(a podstore.Attempt) string {
	if ocispec.OOMKilled(a.Data["cgroup"]) {
		return "OOMKilled"
	}
	return ""
}

// release deletes an attempt's container from runc, and its root
// filesystem.
func (r *Runtime) release(ctx context.Context, a podstore.Attempt) error {
	_ = r.runc.Delete(ctx, a.Status.GetId()) // fails when runc never made it
	return imagestore.Unmount(a.Dir)
}

func (r *Runtime) GetNode(context.Context, *runtimev1.GetNodeRequest) (*runtimev1.Node, error) {
	return hostnode.Node("runc", 0)
}

func (r *Runtime) PullImage(ctx context.Context, req *runtimev1.PullImageRequest) (*runtimev1.PullImageResponse, error) {
	return r.images.Pull(ctx, req)
}

func (r *Runtime) RunSandbox(_ context.Context, req *runtimev1.RunSandboxRequest) (*runtimev1.Sandbox, error) {
	return r.pods.RunSandbox(req)
}

func (r *Runtime) RemoveSandbox(ctx context.Context, req *runtimev1.RemoveSandboxRequest) (*runtimev1.RemoveSandboxResponse, error) {
	return &runtimev1.RemoveSandboxResponse{}, r.pods.RemoveSandbox(ctx, req.GetPodUid())
}

func (r *Runtime) ListSandboxes(context.Context, *runtimev1.ListSandboxesRequest) (*runtimev1.ListSandboxesResponse, error) {
	return r.pods.ListSandboxes()
}

func (r *Runtime) StopContainer(ctx context.Context, req *runtimev1.StopContainerRequest) (*runtimev1.ContainerStatus, error) {
	return r.pods.Stop(ctx, req, func(ctx context.Context, a podstore.Attempt, sig string) error {
		return r.runc.Kill(ctx, a.Status.GetId(), sig)
	})
}

func (r *Runtime) RemoveContainer(ctx context.Context, req *runtimev1.RemoveContainerRequest) (*runtimev1.RemoveContainerResponse, error) {
	return &runtimev1.RemoveContainerResponse{}, r.pods.RemoveContainer(ctx, req)
}

func (r *Runtime) WatchContainers(_ *runtimev1.WatchContainersRequest, srv grpc.ServerStreamingServer[runtimev1.ContainerStatus]) error {
	return r.pods.Watch(srv)
}

func (r *Runtime) ContainerLogs(req *runtimev1.ContainerLogsRequest, srv grpc.ServerStreamingServer[runtimev1.LogChunk]) error {
	return r.pods.Logs(req, srv)
}
