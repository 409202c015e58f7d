// Package sdktest holds in-memory plugins for tests of plugin hosts and of
// the SDK itself. The runtime runs no containers: it remembers its
// configuration and the sandboxes it was asked for. WholePods is a runtime
// that runs whole pods, in memory, as a member cluster behind a virtual node
// would. The network touches no network: it hands out addresses and
// remembers its attachments.
package sdktest

import (
	"context"
	"slices"
	"sync"
	"time"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// Runtime is an in-memory runtimev1.RuntimeServer. It answers Describe,
// Configure, GetNode, RunSandbox, RemoveSandbox and ListSandboxes; the other
// calls return codes.Unimplemented. It serves the nodes of its last
// Configure (sdk.Nodes) even when called directly or served without
// sdk.RequestRules, as the plugins of the conformance kit's own tests are;
// the other request rules it leaves to sdk.RequestRules, but for the pod
// UID of RunSandbox.
type Runtime struct {
	runtimev1.UnimplementedRuntimeServer

	name, version string

	mu             sync.Mutex
	config         []byte
	nodes          []string
	served         sdk.Nodes
	configureCalls int
	sandboxes      map[string]map[string]*runtimev1.Sandbox // node -> pod UID -> sandbox
}

// New returns a Runtime that describes itself with name and version.
func New(name, version string) *Runtime {
	return &Runtime{name: name, version: version, sandboxes: map[string]map[string]*runtimev1.Sandbox{}}
}

// Describe reports the name and version given to New, and no capabilities.
func (r *Runtime) Describe(context.Context, *runtimev1.DescribeRequest) (*runtimev1.DescribeResponse, error) {
	return &runtimev1.DescribeResponse{Name: r.name, Version: r.version}, nil
}

// Configure remembers the configuration and the nodes to serve.
func (r *Runtime) Configure(_ context.Context, req *runtimev1.ConfigureRequest) (*runtimev1.ConfigureResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.config = slices.Clone(req.GetConfig())
	r.nodes = slices.Clone(req.GetNodes())
	r.served.Configure(req.GetNodes())
	r.configureCalls++
	return &runtimev1.ConfigureResponse{}, nil
}

// Configured returns what the last Configure call gave, and how many
// Configure calls there were.
func (r *Runtime) Configured() (config []byte, nodes []string, calls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.config), slices.Clone(r.nodes), r.configureCalls
}

// GetNode reports a ready node of fixed capacity for every node given to
// Configure, and codes.NotFound for any other.
func (r *Runtime) GetNode(_ context.Context, req *runtimev1.GetNodeRequest) (*runtimev1.Node, error) {
	if err := r.checkNode(req.GetNode()); err != nil {
		return nil, err
	}
	capacity := map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"}
	return &runtimev1.Node{
		Capacity:                capacity,
		Allocatable:             capacity,
		OperatingSystem:         "linux",
		Architecture:            "amd64",
		ContainerRuntimeVersion: "memory://" + r.version,
		Ready:                   true,
	}, nil
}

// RunSandbox records a sandbox for the pod, or returns the one it has.
func (r *Runtime) RunSandbox(_ context.Context, req *runtimev1.RunSandboxRequest) (*runtimev1.Sandbox, error) {
	if err := r.checkNode(req.GetNode()); err != nil {
		return nil, err
	}
	uid := req.GetPod().GetUid()
	if uid == "" {
		return nil, sdk.InvalidArgument("pod.uid", "must be set")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pods := r.sandboxes[req.GetNode()]
	if pods == nil {
		pods = map[string]*runtimev1.Sandbox{}
		r.sandboxes[req.GetNode()] = pods
	}
	if sb, ok := pods[uid]; ok {
		return sb, nil
	}
	sb := &runtimev1.Sandbox{
		Pod:               req.GetPod(),
		Id:                "mem-" + uid,
		HostNetwork:       req.GetHostNetwork(),
		CreatedAtUnixNano: time.Now().UnixNano(),
	}
	pods[uid] = sb
	return sb, nil
}

// RemoveSandbox forgets the pod's sandbox; removing an absent one succeeds.
func (r *Runtime) RemoveSandbox(_ context.Context, req *runtimev1.RemoveSandboxRequest) (*runtimev1.RemoveSandboxResponse, error) {
	if err := r.checkNode(req.GetNode()); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sandboxes[req.GetNode()], req.GetPodUid())
	return &runtimev1.RemoveSandboxResponse{}, nil
}

// ListSandboxes lists the node's sandboxes (which never hold containers).
func (r *Runtime) ListSandboxes(_ context.Context, req *runtimev1.ListSandboxesRequest) (*runtimev1.ListSandboxesResponse, error) {
	if err := r.checkNode(req.GetNode()); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	resp := &runtimev1.ListSandboxesResponse{}
	for _, sb := range r.sandboxes[req.GetNode()] {
		resp.Sandboxes = append(resp.Sandboxes, &runtimev1.SandboxStatus{Sandbox: sb})
	}
	return resp, nil
}

func (r *Runtime) checkNode(node string) error {
	return r.served.Check(node)
}
