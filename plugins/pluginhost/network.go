package pluginhost

import (
	"context"

	"google.golang.org/grpc"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// NetworkFamily registers the network plugins: fedlet's network protocol
// (networkv1, CNI's semantics), served by sdk.ServeNetwork.
//
// A restarted network plugin keeps no attachment in memory that matters:
// what it set up lives on the node, so subscribers need not redo anything
// on Started, though they may run GC.
var NetworkFamily = &Family[networkv1.NetworkClient]{
	Name:       sdk.NetworkFamily,
	PluginName: sdk.NetworkPluginName,
	Versions:   sdk.NetworkVersionedPlugins(nil),
	Version:    sdk.NetworkProtocolV1,
	NewClient:  func(conn grpc.ClientConnInterface) networkv1.NetworkClient { return networkv1.NewNetworkClient(conn) },
	Describe: func(ctx context.Context, conn grpc.ClientConnInterface) (*pluginv1.DescribeResponse, error) {
		d, err := networkv1.NewNetworkClient(conn).Describe(ctx, &networkv1.DescribeRequest{})
		if err != nil {
			return nil, err
		}
		return sdk.NetworkDescription(d), nil
	},
	Configure: func(ctx context.Context, conn grpc.ClientConnInterface, req *pluginv1.ConfigureRequest) error {
		_, err := networkv1.NewNetworkClient(conn).Configure(ctx, sdk.NetworkConfigureRequest(req))
		return err
	},
}

// NetworkSpec says which network plugin process to run.
type NetworkSpec = PluginSpec

// Network is a supervised network plugin process.
type Network = Plugin[networkv1.NetworkClient]

// NetworkEvent tells a subscriber of a change of a plugin's state.
type NetworkEvent = PluginEvent

// StartNetwork starts a network plugin: Start with NetworkFamily.
func (h *Host) StartNetwork(ctx context.Context, spec NetworkSpec) (*Network, error) {
	return Start(ctx, h, NetworkFamily, spec)
}
