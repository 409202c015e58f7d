// Command testcsi is a CSI driver served by sdk.ServeCSI for the pluginhost
// tests: its GetPluginInfo manifest carries its process ID, and its
// NodeGetInfo answers the node the base Configure gave it, so that a test
// sees both which process answered and that a restarted one was
// configured again.
package main

import (
	"context"
	"os"
	"strconv"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

type identity struct {
	csi.UnimplementedIdentityServer
}

func (identity) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{
		Name:          "testcsi.fedlet.io",
		VendorVersion: "0.0.3",
		Manifest:      map[string]string{"pid": strconv.Itoa(os.Getpid())},
	}, nil
}

func (identity) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{{
		Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{
			Type: csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS,
		}},
	}}}, nil
}

func (identity) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

type node struct {
	csi.UnimplementedNodeServer
	mu     sync.Mutex
	nodeID string
}

func (n *node) configure(_ context.Context, req *pluginv1.ConfigureRequest) error {
	if len(req.GetNodes()) != 1 {
		return status.Errorf(codes.InvalidArgument, "nodes: serves exactly one node, got %d", len(req.GetNodes()))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodeID = req.GetNodes()[0]
	return nil
}

func (n *node) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodeID == "" {
		return nil, status.Error(codes.FailedPrecondition, "not configured")
	}
	return &csi.NodeGetInfoResponse{
		NodeId:             n.nodeID,
		MaxVolumesPerNode:  7,
		AccessibleTopology: &csi.Topology{Segments: map[string]string{"testcsi.fedlet.io/node": n.nodeID}},
	}, nil
}

func main() {
	n := &node{}
	sdk.ServeCSI(identity{}, nil, n, sdk.WithConfigure(n.configure))
}
