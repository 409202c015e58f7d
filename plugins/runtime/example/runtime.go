// Package example is a small runtime plugin, written as a plugin author
// would write one: containers run with runc, images are pulled without a
// daemon, and the SDK (plugins/sdk/...) does the rest. It passes the
// container-level conformance suite; docs/plugins.md counts its lines.
package example

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/hostnode"
	"github.com/fedlet/fedlet/plugins/sdk/imagestore"
	"github.com/fedlet/fedlet/plugins/sdk/netns"
	"github.com/fedlet/fedlet/plugins/sdk/ociruntime"
	"github.com/fedlet/fedlet/plugins/sdk/statefile"
)

// Runtime serves the runtime protocol with runc. All it knows is on disk,
// under its state directory, so a fresh Runtime adopts what another ran.
type Runtime struct {
	runtimev1.UnimplementedRuntimeServer
	dir    string // the state directory: pods/, images/, runc/
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
	images, err := imagestore.New(filepath.Join(cfg.StateDir, "images"))
	if err != nil {
		return nil, err
	}
	r.dir, r.images, r.runc = cfg.StateDir, images, ociruntime.Runtime{Root: filepath.Join(cfg.StateDir, "runc")}
	return &runtimev1.ConfigureResponse{}, ociruntime.BecomeSubreaper()
}

func (r *Runtime) GetNode(context.Context, *runtimev1.GetNodeRequest) (*runtimev1.Node, error) {
	return hostnode.Node("runc", 0)
}

func (r *Runtime) PullImage(ctx context.Context, req *runtimev1.PullImageRequest) (*runtimev1.PullImageResponse, error) {
	return r.images.Pull(ctx, req)
}

// sandbox is the record of a pod's sandbox: its directory holds it, the
// pod's network namespace and a directory per container attempt.
type sandbox struct {
	Pod       *runtimev1.PodRef
	CreatedAt int64
	Netns     string // empty for the host's network
}

func (s sandbox) proto() *runtimev1.Sandbox {
	return &runtimev1.Sandbox{Pod: s.Pod, Id: s.Pod.GetUid(), NetnsPath: s.Netns, HostNetwork: s.Netns == "", CreatedAtUnixNano: s.CreatedAt}
}

// short names a directory by a hash of its key, short enough for the unix
// sockets in it.
func short(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:8])
}

func (r *Runtime) podDir(uid string) string { return filepath.Join(r.dir, "pods", short(uid)) }

func (r *Runtime) sandbox(uid string) (sandbox, error) {
	var sb sandbox
	ok, err := statefile.Read(filepath.Join(r.podDir(uid), "sandbox.json"), &sb)
	if err == nil && !ok {
		err = status.Errorf(codes.NotFound, "pod %s has no sandbox", uid)
	}
	return sb, err
}

func (r *Runtime) RunSandbox(_ context.Context, req *runtimev1.RunSandboxRequest) (*runtimev1.Sandbox, error) {
	if sb, err := r.sandbox(req.GetPod().GetUid()); status.Code(err) != codes.NotFound {
		return sb.proto(), err // it exists (or cannot be read)
	}
	dir := r.podDir(req.GetPod().GetUid())
	sb := sandbox{Pod: req.GetPod(), CreatedAt: nowNano()}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if !req.GetHostNetwork() {
		sb.Netns = filepath.Join(dir, "netns")
		if err := netns.Create(sb.Netns); err != nil {
			return nil, err
		}
	}
	return sb.proto(), statefile.Write(filepath.Join(dir, "sandbox.json"), sb)
}

func (r *Runtime) RemoveSandbox(ctx context.Context, req *runtimev1.RemoveSandboxRequest) (*runtimev1.RemoveSandboxResponse, error) {
	dir := r.podDir(req.GetPodUid())
	attempts, _ := filepath.Glob(filepath.Join(dir, "*", "rootfs"))
	for _, a := range attempts {
		if err := r.removeAttempt(ctx, filepath.Dir(a)); err != nil {
			return nil, err
		}
	}
	if err := netns.Remove(filepath.Join(dir, "netns")); err != nil {
		return nil, err
	}
	return &runtimev1.RemoveSandboxResponse{}, os.RemoveAll(dir)
}

func (r *Runtime) ListSandboxes(context.Context, *runtimev1.ListSandboxesRequest) (*runtimev1.ListSandboxesResponse, error) {
	files, _ := filepath.Glob(filepath.Join(r.dir, "pods", "*", "sandbox.json"))
	resp := &runtimev1.ListSandboxesResponse{}
	for _, f := range files {
		var sb sandbox
		if ok, err := statefile.Read(f, &sb); !ok || err != nil {
			continue // removed meanwhile
		}
		resp.Sandboxes = append(resp.Sandboxes, &runtimev1.SandboxStatus{Sandbox: sb.proto(), Containers: r.containers(filepath.Dir(f))})
	}
	return resp, nil
}
