package sdk

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

// NetworkPluginName is the plugin-type name under which a network plugin is
// served and dispensed.
const NetworkPluginName = "network"

// NetworkProtocolV1 is version 1 of the network protocol
// (package networkv1, fedlet.network.v1).
const NetworkProtocolV1 = 1

// NetworkVersionedPlugins returns the network protocol versions this SDK
// speaks, each with its go-plugin plugin set. A plugin passes its
// implementation; the host passes nil, since it only dispenses clients.
//
// As for the runtime protocol (VersionedPlugins), a future version is added
// as another key beside NetworkProtocolV1, and hosts and plugins of
// different ages settle on the newest version both know.
func NetworkVersionedPlugins(impl networkv1.NetworkServer) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		NetworkProtocolV1: {NetworkPluginName: &NetworkPlugin{Impl: impl}},
	}
}

// NetworkPlugin binds the network protocol v1 to go-plugin. In a plugin,
// Impl is the implementation to serve; in the host, Impl is nil.
type NetworkPlugin struct {
	// The gRPC plugin protocol only; there is no net/rpc variant.
	plugin.NetRPCUnsupportedPlugin

	// Impl is the plugin's implementation of the network protocol.
	Impl networkv1.NetworkServer
}

var _ plugin.GRPCPlugin = (*NetworkPlugin)(nil)

// GRPCServer registers Impl on the plugin's gRPC server.
func (p *NetworkPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("network plugin: no implementation to serve")
	}
	networkv1.RegisterNetworkServer(s, p.Impl)
	return nil
}

// GRPCClient returns a *NetworkConn for the connection go-plugin opened to
// the plugin process. ctx is cancelled by go-plugin when the process exits.
func (p *NetworkPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &NetworkConn{
		NetworkClient: networkv1.NewNetworkClient(conn),
		Conn:          conn,
		Exited:        ctx.Done(),
	}, nil
}

// NetworkConn is what a host gets when it dispenses NetworkPluginName: a
// network client bound to one plugin process.
type NetworkConn struct {
	networkv1.NetworkClient

	// Conn is the gRPC connection to the plugin process, for health checks
	// and for hosts that route calls themselves.
	Conn *grpc.ClientConn

	// Exited is closed once the plugin process has exited.
	Exited <-chan struct{}
}

// Connection returns the connection and the exit channel of the plugin
// process: what any host needs of a dispensed plugin (Dispensed).
func (c *NetworkConn) Connection() (*grpc.ClientConn, <-chan struct{}) { return c.Conn, c.Exited }
