package pluginhost

import (
	"context"

	"google.golang.org/grpc"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// RuntimeFamily registers the runtime plugins: fedlet's runtime protocol
// (runtimev1), served by sdk.ServeRuntime.
var RuntimeFamily = &Family[runtimev1.RuntimeClient]{
	Name:       sdk.RuntimeFamily,
	PluginName: sdk.RuntimePluginName,
	Versions:   sdk.VersionedPlugins(nil),
	Version:    sdk.RuntimeProtocolV1,
	NewClient:  func(conn grpc.ClientConnInterface) runtimev1.RuntimeClient { return runtimev1.NewRuntimeClient(conn) },
	Capabilities: []string{
		runtimev1.Capability_CAPABILITY_OWN_NETWORK.String(),
		runtimev1.Capability_CAPABILITY_WHOLE_PODS.String(),
	},
	Describe: func(ctx context.Context, conn grpc.ClientConnInterface) (*pluginv1.DescribeResponse, error) {
		d, err := runtimev1.NewRuntimeClient(conn).Describe(ctx, &runtimev1.DescribeRequest{})
		if err != nil {
			return nil, err
		}
		return sdk.RuntimeDescription(d), nil
	},
	Configure: func(ctx context.Context, conn grpc.ClientConnInterface, req *pluginv1.ConfigureRequest) error {
		_, err := runtimev1.NewRuntimeClient(conn).Configure(ctx, sdk.RuntimeConfigureRequest(req))
		return err
	},
}

// RuntimeSpec says which runtime plugin process to run.
type RuntimeSpec = PluginSpec

// Runtime is a supervised runtime plugin process.
type Runtime = Plugin[runtimev1.RuntimeClient]

// Event tells a subscriber of a change of a plugin's state.
type Event = PluginEvent

// StartRuntime starts a runtime plugin: Start with RuntimeFamily.
func (h *Host) StartRuntime(ctx context.Context, spec RuntimeSpec) (*Runtime, error) {
	return Start(ctx, h, RuntimeFamily, spec)
}
