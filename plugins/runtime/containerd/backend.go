// Package containerd is fedlet's runtime backend for a real containerd host:
// it runs pods as runc containers in per-pod network namespaces through the
// containerd 2.x Go client.
//
// The backend keeps no state of its own. Every containerd object it makes
// carries labels naming its node, pod and container (see the Label
// constants) and containerd IDs are derived from (pod UID, container name,
// attempt), so a restarted plugin lists containerd and adopts what it finds.
// Container output goes through containerd's binary logging to a log driver
// process the shim owns (fedlet-log-driver beside this executable, or this
// very executable re-invoked; see LogDriverArg), so logs keep being written
// while the plugin process is down.
package containerd

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// Name is what Describe reports.
const Name = "containerd"

// Version is the plugin's version; release builds set it with
// -ldflags "-X github.com/fedlet/fedlet/plugins/runtime/containerd.Version=...".
var Version = "dev"

// Options tune a Backend. The zero value is what the plugin's main uses.
type Options struct {
	// Logger receives the backend's log records; nil means slog.Default()
	// at the time of each record (the plugin SDK installs its handler after
	// New).
	Logger *slog.Logger
	// LogDriver is the executable the runc shim starts to write a
	// container's logs, invoked as `LogDriver log-driver FILE`; empty means
	// LogDriverBinary beside this process's executable if it is there, and
	// the executable itself otherwise. A program embedding the Backend (a
	// test binary, say) must then dispatch IsLogDriver/RunLogDriver first
	// thing in its main or TestMain, or point LogDriver at a built
	// fedlet-log-driver.
	LogDriver string
}

// Backend implements the runtime protocol against containerd. Create it with
// New, and Close it when done.
type Backend struct {
	runtimev1.UnimplementedRuntimeServer

	opts Options

	mu      sync.RWMutex
	session *session // nil until Configure
}

// New returns an unconfigured backend: every call but Describe and Configure
// fails with FailedPrecondition until Configure succeeds.
func New(opts Options) *Backend {
	return &Backend{opts: opts}
}

func (b *Backend) logger() *slog.Logger {
	if b.opts.Logger != nil {
		return b.opts.Logger
	}
	return slog.Default().With("plugin", Name)
}

// Describe reports the backend's name and version. The agent attaches pod
// networks itself, so the backend declares no capability.
func (b *Backend) Describe(context.Context, *runtimev1.DescribeRequest) (*runtimev1.DescribeResponse, error) {
	return &runtimev1.DescribeResponse{Name: Name, Version: Version}, nil
}

// Configure parses the JSON Config, connects to containerd and starts
// following its task events. Containerd need not be up yet: GetNode reports
// the node not ready until it is. A second Configure replaces the first.
func (b *Backend) Configure(ctx context.Context, req *runtimev1.ConfigureRequest) (*runtimev1.ConfigureResponse, error) {
	cfg, err := ParseConfig(req.GetConfig())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	for i, n := range req.GetNodes() {
		if n == "" {
			return nil, sdk.InvalidArgument("nodes["+strconv.Itoa(i)+"]", "must not be empty")
		}
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "create stateDir %s: %v", cfg.StateDir, err)
	}
	logDriver := b.opts.LogDriver
	if logDriver == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "find own executable for the log driver: %v", err)
		}
		logDriver = findLogDriver(self)
	}
	s, err := newSession(cfg, req.GetNodes(), logDriver, b.logger())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}

	b.mu.Lock()
	old := b.session
	b.session = s
	b.mu.Unlock()
	if old != nil {
		old.close()
	}
	s.logger.Info("configured", "address", cfg.Address, "namespace", cfg.Namespace, "stateDir", cfg.StateDir, "nodes", req.GetNodes())
	return &runtimev1.ConfigureResponse{}, nil
}

// Close stops following containerd's events, ends every watch and closes
// the connection. Containers keep running.
func (b *Backend) Close() error {
	b.mu.Lock()
	s := b.session
	b.session = nil
	b.mu.Unlock()
	if s != nil {
		s.close()
	}
	return nil
}

// sessionFor returns the configured session. That it serves node is for
// the SDK's request rules to have checked (sdk.RequestRules), as every
// field the protocol requires: the backend checks what only it can judge.
func (b *Backend) sessionFor(node string) (*session, error) {
	b.mu.RLock()
	s := b.session
	b.mu.RUnlock()
	if s == nil {
		return nil, sdk.NotConfigured()
	}
	return s, nil
}
