package sdk

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
)

// FamilyPlugin binds the gRPC services of any plugin family to go-plugin,
// for families that came after the base protocol and so have no Describe
// or Configure of their own (storage, whose plugins speak CSI's Identity,
// Node and Controller services as they are; observability). In a plugin,
// Register puts the family's services on the plugin's gRPC server; in a
// host, Register is nil and what is dispensed is a *Conn.
type FamilyPlugin struct {
	// The gRPC plugin protocol only; there is no net/rpc variant.
	plugin.NetRPCUnsupportedPlugin

	// Register registers the family's services on the plugin's server.
	Register func(*grpc.Server)
}

var _ plugin.GRPCPlugin = (*FamilyPlugin)(nil)

// GRPCServer registers the family's services on the plugin's gRPC server.
func (p *FamilyPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Register == nil {
		return errors.New("family plugin: no services to serve")
	}
	p.Register(s)
	return nil
}

// GRPCClient returns a *Conn for the connection go-plugin opened to the
// plugin process. ctx is cancelled by go-plugin when the process exits.
func (p *FamilyPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &Conn{Conn: conn, Exited: ctx.Done()}, nil
}

// Conn is what a host gets when it dispenses a FamilyPlugin: the
// connection to one plugin process, on which it builds the family's
// clients.
type Conn struct {
	// Conn is the gRPC connection to the plugin process.
	Conn *grpc.ClientConn
	// Exited is closed once the plugin process has exited.
	Exited <-chan struct{}
}

// Connection returns the connection and the exit channel (Dispensed).
func (c *Conn) Connection() (*grpc.ClientConn, <-chan struct{}) { return c.Conn, c.Exited }

// Family says how a plugin of a family without its own Describe and
// Configure is served by ServeFamily.
type Family struct {
	// Name is the family's name, which the base Describe answers
	// ("storage").
	Name string
	// PluginName is the go-plugin plugin type the host dispenses.
	PluginName string
	// Version is the family's protocol version the plugin speaks.
	Version int
	// Register registers the plugin's implementation of the family's
	// services on its gRPC server.
	Register func(*grpc.Server)
	// Configure receives the base protocol's Configure: the plugin's
	// configuration, the nodes it serves and their settings.
	Configure func(ctx context.Context, req *pluginv1.ConfigureRequest) error
}

// ServeFamily serves a plugin of family f as ServeRuntime serves a runtime
// plugin: logging, the handshake, AutoMTLS and the base protocol, which is
// how such a plugin is described (d's Name and Version, which it must set)
// and configured (f.Configure).
func ServeFamily(f Family, d Description, opts ...ServeOption) {
	if f.Configure == nil {
		f.Configure = func(context.Context, *pluginv1.ConfigureRequest) error { return nil }
	}
	hooks := familyHooks{
		name: f.Name,
		describe: func(context.Context) (*pluginv1.DescribeResponse, error) {
			return &pluginv1.DescribeResponse{Name: d.Name, Version: d.Version, Family: f.Name, Capabilities: d.Capabilities}, nil
		},
		configure: f.Configure,
	}
	versions := map[int]plugin.PluginSet{f.Version: {f.PluginName: &FamilyPlugin{Register: f.Register}}}
	serve(versions, hooks, append([]ServeOption{WithDescription(d)}, opts...))
}
