// Command testfamily is a plugin of a family that exists only in the
// pluginhost tests, served as a family added after the base protocol is
// (sdk.ServeFamily): described and configured through the base protocol
// only. Its service is the network protocol's, answered by the in-memory
// sdktest.Network, whose Status message tells what the base Configure
// gave: "config=<config> nodes=<nodes> calls=<n>".
package main

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
	"github.com/fedlet/fedlet/plugins/sdk/sdktest"
)

type testFamily struct {
	*sdktest.Network
}

func (n testFamily) Status(ctx context.Context, req *networkv1.StatusRequest) (*networkv1.StatusResponse, error) {
	resp, err := n.Network.Status(ctx, req)
	if err != nil {
		return nil, err
	}
	config, nodes, calls := n.Configured()
	resp.Message = fmt.Sprintf("config=%s nodes=%v calls=%d", config, nodes, calls)
	return resp, nil
}

func main() {
	impl := testFamily{sdktest.NewNetwork("testfamily", "0.0.1")}
	sdk.ServeFamily(sdk.Family{
		Name:       "testfamily",
		PluginName: "testfamily",
		Version:    1,
		Register:   func(s *grpc.Server) { networkv1.RegisterNetworkServer(s, impl) },
		Configure: func(ctx context.Context, req *pluginv1.ConfigureRequest) error {
			_, err := impl.Configure(ctx, sdk.NetworkConfigureRequest(req))
			return err
		},
	}, sdk.Description{
		Name:         "testfamily",
		Version:      "0.0.2",
		Capabilities: []string{"CAPABILITY_KNOWN", "CAPABILITY_FROM_THE_FUTURE"},
	})
}
