// Package example is a small runtime plugin, written as a plugin author
// would write one: it runs containers with runc, pulls images with
// go-containerregistry, and leaves the rest to the SDK (plugins/sdk/...):
// container logs (crilog), processes that outlive the plugin (keeper),
// records on disk (statefile), network namespaces (netns), the calls'
// streams (streams) and the container watch (containerwatch). It passes
// the container-level conformance suite.
package example

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/netns"
	"github.com/fedlet/fedlet/plugins/sdk/statefile"
)

// Runtime serves the runtime protocol with runc. Everything it knows lives
// under its state directory, so a fresh Runtime adopts what an earlier one
// started.
type Runtime struct {
	runtimev1.UnimplementedRuntimeServer
	dir string // the state directory; set by Configure
}

// New returns a Runtime to be configured.
func New() *Runtime { return &Runtime{} }

// config is the plugin's configuration: {"stateDir": "/var/lib/..."}.
type config struct {
	StateDir string `json:"stateDir"`
}

// sandbox is the record of a pod's sandbox.
type sandbox struct {
	Pod       *runtimev1.PodRef `json:"pod"`
	CreatedAt int64             `json:"createdAt"`
	Netns     string            `json:"netns,omitempty"`
}

func (r *Runtime) Describe(context.Context, *runtimev1.DescribeRequest) (*runtimev1.DescribeResponse, error) {
	return &runtimev1.DescribeResponse{Name: "example", Version: "0.1.0"}, nil
}

func (r *Runtime) Configure(_ context.Context, req *runtimev1.ConfigureRequest) (*runtimev1.ConfigureResponse, error) {
	cfg := config{StateDir: "/var/lib/fedlet-runtime-example"}
	if err := json.Unmarshal(req.GetConfig(), &cfg); len(req.GetConfig()) > 0 && err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "config: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "pods"), 0o700); err != nil {
		return nil, fmt.Errorf("make state directory: %w", err)
	}
	// Exec's commands are reparented to this process when runc returns, so
	// that it can wait for them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become a subreaper: %w", err)
	}
	r.dir = cfg.StateDir
	return &runtimev1.ConfigureResponse{}, nil
}

func (r *Runtime) GetNode(context.Context, *runtimev1.GetNodeRequest) (*runtimev1.Node, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return nil, fmt.Errorf("read the host's memory: %w", err)
	}
	capacity := map[string]string{"cpu": strconv.Itoa(goruntime.NumCPU()), "memory": strconv.FormatUint(si.Totalram*uint64(si.Unit), 10), "pods": "110"}
	return &runtimev1.Node{Capacity: capacity, Allocatable: capacity, OperatingSystem: goruntime.GOOS, Architecture: goruntime.GOARCH, ContainerRuntimeVersion: "runc", Ready: true}, nil
}

// short names a directory by a hash of its key: the paths must stay short
// enough for the unix sockets in them.
func short(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:8])
}

func (r *Runtime) podDir(uid string) string { return filepath.Join(r.dir, "pods", short(uid)) }

func (r *Runtime) RunSandbox(_ context.Context, req *runtimev1.RunSandboxRequest) (*runtimev1.Sandbox, error) {
	dir := r.podDir(req.GetPod().GetUid())
	sb := sandbox{Pod: req.GetPod(), CreatedAt: time.Now().UnixNano()}
	if ok, err := statefile.Read(filepath.Join(dir, "sandbox.json"), &sb); ok || err != nil {
		return sb.proto(), err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make sandbox of pod %s: %w", req.GetPod().GetUid(), err)
	}
	if !req.GetHostNetwork() {
		sb.Netns = filepath.Join(dir, "netns")
		if err := netns.Create(sb.Netns); err != nil {
			return nil, err
		}
	}
	return sb.proto(), statefile.Write(filepath.Join(dir, "sandbox.json"), sb)
}

func (s sandbox) proto() *runtimev1.Sandbox {
	return &runtimev1.Sandbox{Pod: s.Pod, Id: s.Pod.GetUid(), NetnsPath: s.Netns, HostNetwork: s.Netns == "", CreatedAtUnixNano: s.CreatedAt}
}

func (r *Runtime) RemoveSandbox(ctx context.Context, req *runtimev1.RemoveSandboxRequest) (*runtimev1.RemoveSandboxResponse, error) {
	dir := r.podDir(req.GetPodUid())
	ctrs, _ := filepath.Glob(filepath.Join(dir, "*", "rootfs"))
	for _, c := range ctrs {
		if err := r.removeContainer(ctx, filepath.Dir(c)); err != nil {
			return nil, err
		}
	}
	if err := netns.Remove(filepath.Join(dir, "netns")); err != nil {
		return nil, err
	}
	return &runtimev1.RemoveSandboxResponse{}, os.RemoveAll(dir)
}

func (r *Runtime) ListSandboxes(context.Context, *runtimev1.ListSandboxesRequest) (*runtimev1.ListSandboxesResponse, error) {
	files, err := filepath.Glob(filepath.Join(r.dir, "pods", "*", "sandbox.json"))
	resp := &runtimev1.ListSandboxesResponse{}
	for _, f := range files {
		var sb sandbox
		if ok, err := statefile.Read(f, &sb); !ok || err != nil {
			continue // removed meanwhile
		}
		ctrs, err := r.containers(filepath.Dir(f))
		if err != nil {
			return nil, err
		}
		resp.Sandboxes = append(resp.Sandboxes, &runtimev1.SandboxStatus{Sandbox: sb.proto(), Containers: ctrs})
	}
	return resp, err
}
