// Package kubernetes is fedlet's runtime backend for a whole member
// cluster behind each virtual node: the pods the hub binds to the node are
// created in the member through its API server (client-go), and the member
// schedules, networks and runs them itself (CAPABILITY_WHOLE_PODS,
// CAPABILITY_OWN_NETWORK).
//
// The backend keeps no state that cannot be rebuilt. Every object it
// creates in a member carries origin labels (see LabelOriginCluster and the
// others) naming the hub, the hub object and the virtual node, so a
// restarted plugin lists the member and finds its pods again. What it reads
// often (the member's nodes, its pods' requests, this node's pods) is kept
// by informers, one set per member, started by Configure and stopped by
// Close.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// Name is what Describe reports.
const Name = "kubernetes"

// Version is the plugin's version; release builds set it with
// -ldflags "-X github.com/fedlet/fedlet/plugins/runtime/kubernetes.Version=...".
var Version = "dev"

// Options tune a Backend. The zero value is what the plugin's main uses.
type Options struct {
	// Logger receives the backend's log records; nil means slog.Default()
	// at the time of each record (the plugin SDK installs its handler after
	// New).
	Logger *slog.Logger
}

// Backend implements the runtime protocol against member clusters. Create
// it with New, and Close it when done.
type Backend struct {
	runtimev1.UnimplementedRuntimeServer

	opts Options

	mu      sync.RWMutex
	members map[string]*member // by node; nil until Configure
	hub     *hubView           // nil without config field hub
}

// New returns an unconfigured backend: every call but Describe and
// Configure fails with FailedPrecondition until Configure succeeds.
func New(opts Options) *Backend {
	return &Backend{opts: opts}
}

func (b *Backend) logger() *slog.Logger {
	if b.opts.Logger != nil {
		return b.opts.Logger
	}
	return slog.Default().With("plugin", Name)
}

// Describe reports the backend's name and version, and that a member runs
// whole pods and networks them itself.
func (b *Backend) Describe(context.Context, *runtimev1.DescribeRequest) (*runtimev1.DescribeResponse, error) {
	return &runtimev1.DescribeResponse{
		Name:    Name,
		Version: Version,
		Capabilities: []runtimev1.Capability{
			runtimev1.Capability_CAPABILITY_OWN_NETWORK,
			runtimev1.Capability_CAPABILITY_WHOLE_PODS,
		},
	}, nil
}

// Configure parses the JSON Config and serves each node given: from its
// node_settings when it has some (a member added at run time), else from
// config field members (no nodes at all means every member there). It
// builds one client per member and starts its informers; a member need not
// answer yet: GetNode reports its node not ready until it does. A later
// Configure keeps serving, undisturbed, the nodes whose member is the
// same, and stops those no longer given.
func (b *Backend) Configure(ctx context.Context, req *runtimev1.ConfigureRequest) (*runtimev1.ConfigureResponse, error) {
	cfg, err := ParseConfig(req.GetConfig())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	wanted, err := membersOf(cfg, req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	logger := b.logger()
	b.mu.RLock()
	old, oldHub := b.members, b.hub
	b.mu.RUnlock()
	hub := oldHub
	if !sameHub(oldHub, cfg.Hub) {
		hub = nil
		if cfg.Hub != nil {
			if hub, err = newHubView(*cfg.Hub, b.kickServices, logger); err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
		}
	}
	members := map[string]*member{}
	var started []*member
	for _, mc := range wanted {
		if m, ok := old[mc.Node]; ok && m.origin == cfg.Origin && sameMember(m.cfg, mc) {
			members[mc.Node] = m
			continue
		}
		m, err := newMember(mc, cfg.Origin, b.currentHub, logger)
		if err != nil {
			if hub != oldHub {
				hub.stop()
			}
			return nil, status.Errorf(codes.InvalidArgument, "%s: %v", mc.field, err)
		}
		members[mc.Node] = m
		started = append(started, m)
	}
	for _, m := range started {
		m.start()
	}

	b.mu.Lock()
	b.members, b.hub = members, hub
	b.mu.Unlock()
	if hub != oldHub {
		oldHub.stop()
		b.kickServices()
	}
	gone := map[string]*member{}
	for node, m := range old {
		if members[node] != m {
			gone[node] = m
		}
	}
	stopAll(gone, status.Error(codes.Unavailable, "the runtime plugin was reconfigured; watch again"))
	logger.Info("configured", "origin", cfg.Origin, "nodes", len(members), "started", len(started), "stopped", len(gone))
	return &runtimev1.ConfigureResponse{}, nil
}

// membersOf is the member of every node the request gives.
func membersOf(cfg Config, req *runtimev1.ConfigureRequest) ([]MemberConfig, error) {
	nodes := req.GetNodes()
	if len(nodes) == 0 {
		return cfg.Members, nil
	}
	out := make([]MemberConfig, 0, len(nodes))
	for i, n := range nodes {
		if n == "" {
			return nil, fmt.Errorf("nodes[%d]: must not be empty", i)
		}
		if s, ok := req.GetNodeSettings()[n]; ok {
			mc, err := memberFromSettings(n, s)
			if err != nil {
				return nil, err
			}
			out = append(out, mc)
			continue
		}
		mc, ok := cfg.member(n)
		if !ok {
			return nil, fmt.Errorf("nodes[%d]: node %q has neither node_settings nor an entry in config field members", i, n)
		}
		out = append(out, mc)
	}
	return out, nil
}

// Close stops every member's informers and loops and ends every watch. The
// member pods keep running.
func (b *Backend) Close() error {
	b.mu.Lock()
	old, hub := b.members, b.hub
	b.members, b.hub = nil, nil
	b.mu.Unlock()
	stopAll(old, status.Error(codes.Unavailable, "the runtime plugin is shutting down"))
	hub.stop()
	return nil
}

func stopAll(members map[string]*member, err error) {
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Go(func() { m.stop(err) })
	}
	wg.Wait()
}

// currentHub is the hub view members read at each reflection.
func (b *Backend) currentHub() *hubView {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.hub
}

// kickServices makes every member check its reflection of the hub's
// Services.
func (b *Backend) kickServices() {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, m := range b.members {
		kick(m.kickServices)
	}
}

func sameHub(h *hubView, cfg *HubConfig) bool {
	if h == nil || cfg == nil {
		return h == nil && cfg == nil
	}
	return h.cfg == *cfg
}

// memberFor returns the member behind node.
func (b *Backend) memberFor(node string) (*member, error) {
	b.mu.RLock()
	members := b.members
	b.mu.RUnlock()
	if members == nil {
		return nil, sdk.NotConfigured()
	}
	// A Configure that named no nodes serves the members of the config,
	// which only the backend knows.
	m, ok := members[node]
	if !ok {
		return nil, sdk.NodeNotServed(node)
	}
	return m, nil
}

// errWholePods answers the container-level calls.
var errWholePods = errors.New("the kubernetes runtime runs whole pods in a member cluster (CAPABILITY_WHOLE_PODS): use CreatePod, DeletePod, ListPods and WatchPods")

func wholePods(call string) error {
	return status.Error(codes.Unimplemented, fmt.Sprintf("%s: %v", call, errWholePods))
}
