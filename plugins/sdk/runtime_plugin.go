package sdk

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// RuntimePlugin binds the runtime protocol v1 to go-plugin. In a plugin,
// Impl is the implementation to serve; in the host, Impl is nil.
type RuntimePlugin struct {
	// The gRPC plugin protocol only; there is no net/rpc variant.
	plugin.NetRPCUnsupportedPlugin

	// Impl is the plugin's implementation of the runtime protocol.
	Impl runtimev1.RuntimeServer
}

var _ plugin.GRPCPlugin = (*RuntimePlugin)(nil)

// GRPCServer registers Impl on the plugin's gRPC server.
func (p *RuntimePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("runtime plugin: no implementation to serve")
	}
	runtimev1.RegisterRuntimeServer(s, p.Impl)
	return nil
}

// GRPCClient returns a *RuntimeConn for the connection go-plugin opened to
// the plugin process. ctx is cancelled by go-plugin when the process exits.
func (p *RuntimePlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &RuntimeConn{
		RuntimeClient: runtimev1.NewRuntimeClient(conn),
		Conn:          conn,
		Exited:        ctx.Done(),
	}, nil
}

// RuntimeConn is what a host gets when it dispenses RuntimePluginName: a
// runtime client bound to one plugin process.
type RuntimeConn struct {
	runtimev1.RuntimeClient

	// Conn is the gRPC connection to the plugin process, for health checks
	// and for hosts that route calls themselves.
	Conn *grpc.ClientConn

	// Exited is closed once the plugin process has exited.
	Exited <-chan struct{}
}

// Connection returns the connection and the exit channel of the plugin
// process: what any host needs of a dispensed plugin (Dispensed).
func (c *RuntimeConn) Connection() (*grpc.ClientConn, <-chan struct{}) { return c.Conn, c.Exited }
