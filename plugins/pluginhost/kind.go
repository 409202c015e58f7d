package pluginhost

import (
	"context"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

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

// describer is what every protocol's DescribeResponse has.
type describer interface {
	proto.Message
	GetName() string
	GetVersion() string
}

// kind is what the host knows of one plugin family (runtime, network): how
// its protocol is offered and dispensed, and how a fresh process is
// described and configured. Launching, supervising, restarting, events and
// the forwarding client are the same for every kind (process.go); each
// family's file declares its kind and the thin typed wrapper around process.
type kind[D describer] struct {
	// family names the kind in errors: "start runtime plugin mem: ...".
	family string
	// pluginName and versions are what go-plugin dispenses and negotiates.
	pluginName string
	versions   map[int]plugin.PluginSet
	// driven is the protocol version this host knows how to drive: a
	// version added to the SDK before the host learnt it is refused.
	driven int
	// bind takes the gRPC connection and the exit channel out of what
	// go-plugin dispensed; false when it is not the family's client.
	bind func(raw any) (conn *grpc.ClientConn, exited <-chan struct{}, ok bool)
	// describe and configure are the protocol's Describe and Configure.
	describe  func(ctx context.Context, conn grpc.ClientConnInterface) (D, error)
	configure func(ctx context.Context, conn grpc.ClientConnInterface, spec PluginSpec) error
}
