package pluginhost

import (
	"context"
	"slices"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
)

// Family is what the host knows of one plugin family (runtime, network,
// and later storage and observability): one declarative registration per
// family, in runtime.go, network.go and their like. Launching, pinning,
// negotiation, supervision, restarts, events, call timeouts and the base
// protocol (describe, validate, configure) are the same for every family
// (process.go, instance.go); a registration only says what differs.
//
// C is the typed client of the family's service that Plugin.Client
// returns: runtimev1.RuntimeClient, networkv1.NetworkClient, or a struct of
// several clients for a family that speaks several services (CSI's
// Identity, Node and Controller).
type Family[C any] struct {
	// Name names the family in errors ("start runtime plugin mem: ...") and
	// is what a plugin's base Describe must answer as its family.
	Name string
	// PluginName is the go-plugin plugin type the host dispenses.
	PluginName string
	// Versions are the protocol versions offered at the handshake, each
	// with its go-plugin plugin set (the SDK's, without implementations);
	// what go-plugin dispenses must be an sdk.Dispensed.
	Versions map[int]plugin.PluginSet
	// Version is the protocol version this host drives: a version added to
	// Versions before the host learnt to drive it is refused.
	Version int
	// NewClient makes the family's client on a connection to the plugin.
	// The connection given is the host's forwarding one: it outlives every
	// process and reaches the one that is up.
	NewClient func(conn grpc.ClientConnInterface) C
	// Capabilities are the optional capabilities the family defines, as its
	// protocol names them. A plugin that declares others is logged, and
	// they are ignored: a newer plugin may know more than this host.
	Capabilities []string
	// Describe and Configure are the family's own v1 calls, used for a
	// plugin that does not serve the base protocol (built before it
	// existed). Nil for a family that never had its own: its plugins must
	// serve the base.
	Describe  func(ctx context.Context, conn grpc.ClientConnInterface) (*pluginv1.DescribeResponse, error)
	Configure func(ctx context.Context, conn grpc.ClientConnInterface, req *pluginv1.ConfigureRequest) error
}

// AnyFamily is a Family of any client type, for what the host does
// without a client (CheckConfig).
type AnyFamily interface {
	family() *Family[any]
}

// family is f without its client type, as the host's internals keep it:
// they never make a client.
func (f *Family[C]) family() *Family[any] {
	return &Family[any]{
		Name:         f.Name,
		PluginName:   f.PluginName,
		Versions:     f.Versions,
		Version:      f.Version,
		Capabilities: f.Capabilities,
		Describe:     f.Describe,
		Configure:    f.Configure,
	}
}

// PluginSpec says which plugin process to run.
type PluginSpec struct {
	// Name names the process in logs (plugin=<Name>) and errors.
	Name string
	// Plugin is the binary's file name, looked up in Config.Dirs.
	Plugin string
	// Config is the plugin's own configuration (JSON), given to Configure.
	Config []byte
	// Nodes are the nodes the process serves, given to Configure.
	Nodes []string
	// NodeSettings are settings of single nodes that come from the cluster
	// (runtime plugins; a member's kubeconfig), by node name.
	NodeSettings map[string]map[string][]byte
	// CallTimeout bounds every unary call made through the process's client
	// whose context has no deadline of its own, so that a plugin that
	// answers its health checks but hangs a call holds up no caller for
	// ever; DefaultCallTimeout if zero. Streams are bounded by their
	// callers.
	CallTimeout time.Duration
}

// DefaultCallTimeout is PluginSpec.CallTimeout's default, the kubelet's
// runtime request timeout.
const DefaultCallTimeout = 2 * time.Minute

// configureRequest is spec's Configure request in the base protocol's
// terms.
func (spec PluginSpec) configureRequest() *pluginv1.ConfigureRequest {
	req := &pluginv1.ConfigureRequest{Config: spec.Config, Nodes: spec.Nodes}
	for node, data := range spec.NodeSettings {
		if req.NodeSettings == nil {
			req.NodeSettings = map[string]*pluginv1.NodeSettings{}
		}
		req.NodeSettings[node] = &pluginv1.NodeSettings{Data: data}
	}
	return req
}

// Plugin is a supervised plugin process of family C. Its process may be
// restarted any number of times; Client stays valid throughout.
type Plugin[C any] struct {
	proc   *process
	client C
}

// Start launches the plugin process of spec as a plugin of family f,
// describes it, checks its configuration (ValidateConfig) and configures
// it, and returns once that first start succeeded; otherwise it returns why
// it failed, with the plugin's last stderr lines (a *ConfigError when the
// plugin found its configuration wrong).
//
// From then on a goroutine owned by ctx supervises the process: it restarts
// it with exponential backoff when it exits or fails its health checks,
// describes and configures it again after each restart, and tells
// subscribers. When ctx ends the process is stopped; Done says when.
func Start[C any](ctx context.Context, h *Host, f *Family[C], spec PluginSpec) (*Plugin[C], error) {
	p, err := startProcess(ctx, h, f.family(), spec)
	if err != nil {
		return nil, err
	}
	return &Plugin[C]{proc: p, client: f.NewClient(p.conn())}, nil
}

// Client returns the family's client of the process. It is one client for
// the plugin's whole life: each call goes to the process that is up at that
// moment, and fails with codes.Unavailable while none is.
func (p *Plugin[C]) Client() C { return p.client }

// Reconfigure gives the process, and every later one, a new set of nodes
// and node settings (members came or went): Configure is called on the
// process that is up now, if any.
func (p *Plugin[C]) Reconfigure(ctx context.Context, nodes []string, settings map[string]map[string][]byte) error {
	return p.proc.reconfigure(ctx, nodes, settings)
}

// Describe returns what the plugin said of itself at its last start, in the
// base protocol's terms (from the family's own Describe for a plugin
// without the base).
func (p *Plugin[C]) Describe() *pluginv1.DescribeResponse { return p.proc.Describe() }

// HasCapability says whether the plugin declared capability name (as its
// family's protocol names it) at its last start.
func (p *Plugin[C]) HasCapability(name string) bool {
	return slices.Contains(p.proc.Describe().GetCapabilities(), name)
}

// State says whether the process is up, with a reason (one of the Reason
// constants) and a message for humans.
func (p *Plugin[C]) State() (up bool, reason, message string) { return p.proc.State() }

// Subscribe returns a channel of the plugin's events, starting with its
// current state (Started while it is up), and a function that cancels the
// subscription. Delivery never waits for the subscriber: one that falls
// behind loses its oldest events, never the newest. The channel is closed
// after cancel, or after the final Down once the plugin has stopped.
func (p *Plugin[C]) Subscribe() (<-chan PluginEvent, func()) { return p.proc.Subscribe() }

// Done is closed once the plugin has stopped for good: its context ended,
// its process is gone and its supervisor has returned.
func (p *Plugin[C]) Done() <-chan struct{} { return p.proc.Done() }
