package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	cniversion "github.com/containernetworking/cni/pkg/version"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
	"github.com/fedlet/fedlet/plugins/version"
)

// Name is what the plugin calls itself in Describe.
const Name = "fedlet-network-cni"

// Server is the CNI network plugin: a networkv1.NetworkServer. Serve it with
// sdk.ServeNetwork(plugin.New(nil)).
type Server struct {
	networkv1.UnimplementedNetworkServer
	log *slog.Logger

	// gc is held exclusively by GC and shared by every other call that
	// changes the node, so that GC never removes an attachment being added.
	gc sync.RWMutex
	// attachLocks serializes the calls about one attachment.
	attachLocks keyedMutex

	mu    sync.Mutex
	cfg   Config
	nodes map[string]*node // nil until Configure
}

// node is one served node: its libcni handle (whose cache is the node's)
// and its attachment records.
type node struct {
	name    string
	cni     *libcni.CNIConfig
	records records
}

// New returns an unconfigured Server logging through log (nil for slog's
// default, which sdk.ServeNetwork points at the agent's log).
func New(log *slog.Logger) *Server {
	return &Server{log: log}
}

func (s *Server) logger() *slog.Logger {
	if s.log != nil {
		return s.log
	}
	return slog.Default()
}

// Describe names the plugin and fedlet's version.
func (s *Server) Describe(context.Context, *networkv1.DescribeRequest) (*networkv1.DescribeResponse, error) {
	return &networkv1.DescribeResponse{Name: Name, Version: version.Version}, nil
}

// Configure parses the config (see Config) and prepares each node's cache
// directory. A conflist that does not exist yet is not an error here:
// Status reports it until it appears.
func (s *Server) Configure(_ context.Context, req *networkv1.ConfigureRequest) (*networkv1.ConfigureResponse, error) {
	cfg, err := parseConfig(req.GetConfig())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if len(cfg.Conflist) > 0 {
		if _, err := parseConflist(cfg.Conflist); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "conflist: %v", err)
		}
	}
	nodes := map[string]*node{}
	for _, name := range req.GetNodes() {
		if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
			return nil, status.Errorf(codes.InvalidArgument, "node name %q cannot name a directory", name)
		}
		dir := filepath.Join(cfg.CacheDir, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "cache directory of node %s: %v", name, err)
		}
		nodes[name] = &node{
			name:    name,
			cni:     libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, dir, newExec()),
			records: records{dir: filepath.Join(dir, "attachments")},
		}
	}
	s.mu.Lock()
	s.cfg, s.nodes = cfg, nodes
	s.mu.Unlock()
	source := cfg.ConflistFile
	if source == "" {
		source = "inline"
	}
	s.logger().Info("network plugin configured", "nodes", req.GetNodes(), "conflist", source,
		"binDirs", cfg.BinDirs, "cacheDir", cfg.CacheDir)
	return &networkv1.ConfigureResponse{}, nil
}

// Status loads the conflist, finds its binaries, asks each plugin for the
// versions it speaks (libcni's validation) and, for cniVersion 1.1.0 and
// later, for its STATUS.
func (s *Server) Status(ctx context.Context, req *networkv1.StatusRequest) (*networkv1.StatusResponse, error) {
	n, cfg, err := s.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	list, prob := loadConflist(cfg)
	if prob == nil {
		prob = findBinaries(list, cfg.BinDirs)
	}
	if prob != nil {
		return &networkv1.StatusResponse{Reason: prob.reason, Message: prob.message}, nil
	}
	resp := &networkv1.StatusResponse{NetworkName: list.Name}
	caps, err := n.cni.ValidateNetworkList(ctx, list)
	if err != nil {
		resp.Reason = ReasonPluginNotReady
		resp.Message = fmt.Sprintf("CNI network %q: %v", list.Name, err)
		return resp, nil
	}
	slices.Sort(caps)
	resp.Capabilities = caps
	if err := n.cni.GetStatusNetworkList(ctx, list); err != nil {
		resp.Reason = ReasonPluginNotReady
		resp.Message = fmt.Sprintf("CNI network %q: STATUS: %v", list.Name, err)
		return resp, nil
	}
	resp.Ready = true
	return resp, nil
}

// node returns the served node called name and the config, or the error
// the protocol asks for.
func (s *Server) node(name string) (*node, Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nodes == nil {
		return nil, Config{}, sdk.NotConfigured()
	}
	// A Configure that named no nodes serves none: the SDK's request rules
	// leave that case to the plugin.
	n, ok := s.nodes[name]
	if !ok {
		return nil, Config{}, sdk.NodeNotServed(name)
	}
	return n, s.cfg, nil
}

// otherNodes returns every served node but name.
func (s *Server) otherNodes(name string) []*node {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*node
	for n, nd := range s.nodes {
		if n != name {
			out = append(out, nd)
		}
	}
	return out
}

// newExec is how libcni runs CNI plugins, with their stderr in the plugin's
// own (so in the agent's log). Given explicitly: libcni builds its default
// lazily, which races when calls run at once.
func newExec() invoke.Exec {
	return &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: cniversion.PluginDecoder{}}
}

// keyedMutex is a mutex per attachment, kept only while someone holds or
// waits for it.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*refMutex{}
	}
	m := k.locks[key]
	if m == nil {
		m = &refMutex{}
		k.locks[key] = m
	}
	m.refs++
	k.mu.Unlock()

	m.Lock()
	return func() {
		m.Unlock()
		k.mu.Lock()
		m.refs--
		if m.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
