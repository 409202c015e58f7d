package sdk_test

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// tinyNetwork is a network plugin that gives every pod the same address and
// sets up nothing: enough to show the shape of the calls. The calls it does
// not implement (Check, GC) answer codes.Unimplemented.
type tinyNetwork struct {
	networkv1.UnimplementedNetworkServer
}

func (tinyNetwork) Describe(context.Context, *networkv1.DescribeRequest) (*networkv1.DescribeResponse, error) {
	return &networkv1.DescribeResponse{Name: "tiny-net", Version: "0.1.0"}, nil
}

func (tinyNetwork) Configure(_ context.Context, req *networkv1.ConfigureRequest) (*networkv1.ConfigureResponse, error) {
	// This record shows up in the agent's log, with plugin=<process name>.
	slog.Info("configured", "nodes", req.GetNodes())
	return &networkv1.ConfigureResponse{}, nil
}

func (tinyNetwork) Status(context.Context, *networkv1.StatusRequest) (*networkv1.StatusResponse, error) {
	return &networkv1.StatusResponse{Ready: true, NetworkName: "tiny"}, nil
}

// Add is called once the pod's network namespace exists; it must be
// idempotent, and the pod's IPs are the addresses on its sandbox interface.
func (tinyNetwork) Add(_ context.Context, req *networkv1.AddRequest) (*networkv1.Result, error) {
	if req.GetNetnsPath() == "" {
		return nil, status.Error(codes.InvalidArgument, "netns_path is empty")
	}
	return &networkv1.Result{
		CniVersion: "1.1.0",
		Interfaces: []*networkv1.Interface{{Name: req.GetAttachment().GetIfname(), Sandbox: req.GetNetnsPath()}},
		Ips:        []*networkv1.IPConfig{{Address: "10.88.0.2/24", Gateway: "10.88.0.1", Interface: proto.Int32(0)}},
	}, nil
}

// Del of an attachment that does not exist succeeds.
func (tinyNetwork) Del(context.Context, *networkv1.DelRequest) (*networkv1.DelResponse, error) {
	return &networkv1.DelResponse{}, nil
}

// The main of a network plugin is one call. The agent launches the built
// binary; run by hand, it says it is a plugin and exits.
func ExampleServeNetwork() {
	sdk.ServeNetwork(tinyNetwork{})
}

// The agent core calls Add with the pod's sandbox (its UID as container ID),
// its network namespace and the node's pod CIDR, and reads the pod's IP from
// the result.
func Example_networkAdd() {
	var impl networkv1.NetworkServer = tinyNetwork{}
	res, err := impl.Add(context.Background(), &networkv1.AddRequest{
		Node:       "node-a",
		Attachment: &networkv1.Attachment{ContainerId: "6a1e0c4e-pod-uid", Ifname: "eth0"},
		NetnsPath:  "/run/netns/fedlet-6a1e0c4e-pod-uid",
		Pod:        &networkv1.PodRef{Uid: "6a1e0c4e-pod-uid", Namespace: "default", Name: "web"},
		IpRanges:   []*networkv1.IPRangeSet{{Ranges: []*networkv1.IPRange{{Subnet: "10.88.0.0/24"}}}},
	})
	if err != nil {
		fmt.Println("add:", err)
		return
	}
	for _, ip := range res.GetIps() {
		if ip.Interface != nil && res.GetInterfaces()[ip.GetInterface()].GetSandbox() != "" {
			fmt.Println("pod IP", ip.GetAddress(), "via", ip.GetGateway())
		}
	}
	// Output: pod IP 10.88.0.2/24 via 10.88.0.1
}
