package pluginhost

import (
	"context"

	"google.golang.org/grpc"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// RuntimeSpec says which runtime plugin process to run.
type RuntimeSpec = PluginSpec

// Event tells a subscriber of a change of a Runtime's state.
type Event = PluginEvent[*runtimev1.DescribeResponse]

// Runtime is a supervised runtime plugin process. Its process may be
// restarted any number of times; Client stays valid throughout.
type Runtime struct {
	proc   *process[*runtimev1.DescribeResponse]
	client runtimev1.RuntimeClient
}

var runtimeKind = kind[*runtimev1.DescribeResponse]{
	family:     "runtime",
	pluginName: sdk.RuntimePluginName,
	versions:   sdk.VersionedPlugins(nil),
	driven:     sdk.RuntimeProtocolV1,
	bind: func(raw any) (*grpc.ClientConn, <-chan struct{}, bool) {
		c, ok := raw.(*sdk.RuntimeConn)
		if !ok {
			return nil, nil, false
		}
		return c.Conn, c.Exited, true
	},
	describe: func(ctx context.Context, conn grpc.ClientConnInterface) (*runtimev1.DescribeResponse, error) {
		return runtimev1.NewRuntimeClient(conn).Describe(ctx, &runtimev1.DescribeRequest{})
	},
	configure: func(ctx context.Context, conn grpc.ClientConnInterface, spec PluginSpec) error {
		req := &runtimev1.ConfigureRequest{Config: spec.Config, Nodes: spec.Nodes}
		for node, data := range spec.NodeSettings {
			if req.NodeSettings == nil {
				req.NodeSettings = map[string]*runtimev1.NodeSettings{}
			}
			req.NodeSettings[node] = &runtimev1.NodeSettings{Data: data}
		}
		_, err := runtimev1.NewRuntimeClient(conn).Configure(ctx, req)
		return err
	},
}

// StartRuntime launches the runtime plugin process of spec, calls Describe
// and Configure, and returns once that first start succeeded; otherwise it
// returns why it failed, with the plugin's last stderr lines.
//
// From then on a goroutine owned by ctx supervises the process: it restarts
// it with exponential backoff when it exits or fails its health checks,
// calls Describe and Configure again after each restart, and tells
// subscribers. When ctx ends the process is stopped; Done says when.
func (h *Host) StartRuntime(ctx context.Context, spec RuntimeSpec) (*Runtime, error) {
	p, err := startProcess(ctx, h, runtimeKind, spec)
	if err != nil {
		return nil, err
	}
	return &Runtime{proc: p, client: runtimev1.NewRuntimeClient(p.conn())}, nil
}

// Reconfigure gives the process, and every later one, a new set of nodes
// and node settings (members came or went): Configure is called on the
// process that is up now, if any.
func (r *Runtime) Reconfigure(ctx context.Context, nodes []string, settings map[string]map[string][]byte) error {
	return r.proc.reconfigure(ctx, nodes, settings)
}

// Client returns the runtime client of the process. It is one client for
// the Runtime's whole life: each call goes to the process that is up at
// that moment, and fails with codes.Unavailable while none is.
func (r *Runtime) Client() runtimev1.RuntimeClient { return r.client }

// Describe returns what the plugin said of itself at its last start.
func (r *Runtime) Describe() *runtimev1.DescribeResponse { return r.proc.Describe() }

// State says whether the process is up, with a reason (one of the Reason
// constants) and a message for humans.
func (r *Runtime) State() (up bool, reason, message string) { return r.proc.State() }

// Subscribe returns a channel of the Runtime's events, starting with its
// current state (Started while it is up), and a function that cancels the
// subscription. Delivery never waits for the subscriber: one that falls
// behind loses its oldest events, never the newest. The channel is closed
// after cancel, or after the final Down once the Runtime has stopped.
func (r *Runtime) Subscribe() (<-chan Event, func()) { return r.proc.Subscribe() }

// Done is closed once the Runtime has stopped for good: its context ended,
// its process is gone and its supervisor has returned.
func (r *Runtime) Done() <-chan struct{} { return r.proc.Done() }
