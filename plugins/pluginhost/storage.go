package pluginhost

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"

	"github.com/fedlet/fedlet/plugins/sdk"
)

// CSIClient is the client of a storage plugin: the CSI services as the
// specification defines them. Controller is usable only when the plugin
// declares CONTROLLER_SERVICE (its calls fail with Unimplemented
// otherwise).
type CSIClient struct {
	Identity   csi.IdentityClient
	Controller csi.ControllerClient
	Node       csi.NodeClient
}

// NewCSIClient makes the CSI clients on one connection.
func NewCSIClient(conn grpc.ClientConnInterface) CSIClient {
	return CSIClient{
		Identity:   csi.NewIdentityClient(conn),
		Controller: csi.NewControllerClient(conn),
		Node:       csi.NewNodeClient(conn),
	}
}

// StorageFamily registers the storage plugins: CSI drivers served by
// sdk.ServeCSI, described and configured through the base protocol only.
//
// A restarted CSI driver keeps nothing in memory that matters: the CSI
// specification makes every call idempotent and the driver's state lives
// on the node (its volumes, the mount table), so callers simply retry.
var StorageFamily = &Family[CSIClient]{
	Name:       sdk.StorageFamily,
	PluginName: sdk.CSIPluginName,
	Versions:   sdk.CSIVersionedPlugins(),
	Version:    sdk.StorageProtocolV1,
	NewClient:  NewCSIClient,
	// The plugin capabilities' service types, as sdk.DescribeCSI names them.
	Capabilities: []string{
		csi.PluginCapability_Service_CONTROLLER_SERVICE.String(),
		csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS.String(),
		csi.PluginCapability_Service_GROUP_CONTROLLER_SERVICE.String(),
		csi.PluginCapability_Service_SNAPSHOT_METADATA_SERVICE.String(),
	},
}

// Storage is a supervised storage plugin process.
type Storage = Plugin[CSIClient]

// StartStorage starts a storage plugin: Start with StorageFamily.
func (h *Host) StartStorage(ctx context.Context, spec PluginSpec) (*Storage, error) {
	return Start(ctx, h, StorageFamily, spec)
}
