package sdk

import (
	"context"

	"google.golang.org/grpc"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// The family names a plugin's base Describe answers, and hosts expect.
const (
	RuntimeFamily = "runtime"
	NetworkFamily = "network"
	StorageFamily = "storage"
)

// The families' v1 protocols have their own Describe and Configure, older
// than the base protocol. These functions translate between the two, for
// the SDK (which serves the base from the family's implementation) and for
// hosts (which fall back to the family's calls for a plugin without the
// base).

// RuntimeDescription is a runtime plugin's own Describe in the base
// protocol's terms: capabilities by their enum names.
func RuntimeDescription(d *runtimev1.DescribeResponse) *pluginv1.DescribeResponse {
	out := &pluginv1.DescribeResponse{Name: d.GetName(), Version: d.GetVersion(), Family: RuntimeFamily}
	for _, c := range d.GetCapabilities() {
		out.Capabilities = append(out.Capabilities, c.String())
	}
	return out
}

// RuntimeConfigureRequest is a base Configure request as the runtime
// protocol's.
func RuntimeConfigureRequest(req *pluginv1.ConfigureRequest) *runtimev1.ConfigureRequest {
	out := &runtimev1.ConfigureRequest{Config: req.GetConfig(), Nodes: req.GetNodes()}
	for node, s := range req.GetNodeSettings() {
		if out.NodeSettings == nil {
			out.NodeSettings = map[string]*runtimev1.NodeSettings{}
		}
		out.NodeSettings[node] = &runtimev1.NodeSettings{Data: s.GetData()}
	}
	return out
}

// NetworkDescription is a network plugin's own Describe in the base
// protocol's terms.
func NetworkDescription(d *networkv1.DescribeResponse) *pluginv1.DescribeResponse {
	return &pluginv1.DescribeResponse{Name: d.GetName(), Version: d.GetVersion(), Family: NetworkFamily}
}

// NetworkConfigureRequest is a base Configure request as the network
// protocol's, which has no node settings.
func NetworkConfigureRequest(req *pluginv1.ConfigureRequest) *networkv1.ConfigureRequest {
	return &networkv1.ConfigureRequest{Config: req.GetConfig(), Nodes: req.GetNodes()}
}

func runtimeHooks(impl runtimev1.RuntimeServer) familyHooks {
	return familyHooks{
		name: RuntimeFamily,
		describe: func(ctx context.Context) (*pluginv1.DescribeResponse, error) {
			d, err := impl.Describe(ctx, &runtimev1.DescribeRequest{})
			if err != nil {
				return nil, err
			}
			return RuntimeDescription(d), nil
		},
		configure: func(ctx context.Context, req *pluginv1.ConfigureRequest) error {
			_, err := impl.Configure(ctx, RuntimeConfigureRequest(req))
			return err
		},
	}
}

func networkHooks(impl networkv1.NetworkServer) familyHooks {
	return familyHooks{
		name: NetworkFamily,
		describe: func(ctx context.Context) (*pluginv1.DescribeResponse, error) {
			d, err := impl.Describe(ctx, &networkv1.DescribeRequest{})
			if err != nil {
				return nil, err
			}
			return NetworkDescription(d), nil
		},
		configure: func(ctx context.Context, req *pluginv1.ConfigureRequest) error {
			_, err := impl.Configure(ctx, NetworkConfigureRequest(req))
			return err
		},
	}
}

// Dispensed is what a host gets when it dispenses a plugin of any family
// from go-plugin (RuntimeConn, NetworkConn): the gRPC connection to the
// plugin process, on which the host builds the family's client and the base
// protocol's, and a channel closed once the process has exited.
type Dispensed interface {
	Connection() (conn *grpc.ClientConn, exited <-chan struct{})
}
