package sdk_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// tinyCSI is the identity of a CSI driver, and a node service that only
// says which node it is on: the CSI services exactly as the specification
// defines them, nothing of fedlet's. Calls it does not implement answer
// codes.Unimplemented.
type tinyCSI struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedNodeServer
	node string
}

func (tinyCSI) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: "tiny.csi.example.com", VendorVersion: "0.1.0"}, nil
}

func (tinyCSI) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{}, nil // node service only
}

func (tinyCSI) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

func (t *tinyCSI) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: t.node}, nil
}

// The main of a storage plugin is one call; the agent's Configure names
// the node it serves. Run by hand, it says it is a plugin and exits.
func ExampleServeCSI() {
	d := &tinyCSI{}
	sdk.ServeCSI(d, nil, d, sdk.WithConfigure(func(_ context.Context, req *pluginv1.ConfigureRequest) error {
		d.node = req.GetNodes()[0]
		return nil
	}))
}

// The same driver beside a plain kubelet: its services on a unix socket,
// until the context ends.
func ExampleServeCSIEndpoint() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	socket := filepath.Join(os.TempDir(), "tiny-csi-example.sock")
	d := &tinyCSI{node: "node-1"}
	served := make(chan error, 1)
	go func() { served <- sdk.ServeCSIEndpoint(ctx, "unix://"+socket, d, nil, d) }()

	// What a kubelet does first: ask the driver who it is.
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	info, err := csi.NewIdentityClient(conn).GetPluginInfo(ctx, &csi.GetPluginInfoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		panic(err)
	}
	node, err := csi.NewNodeClient(conn).NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		panic(err)
	}
	fmt.Println(info.GetName(), node.GetNodeId())

	stop()
	fmt.Println(<-served)
	// Output:
	// tiny.csi.example.com node-1
	// <nil>
}
