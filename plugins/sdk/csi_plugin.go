package sdk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
)

// CSIPluginName is the plugin-type name under which a storage plugin is
// served and dispensed.
const CSIPluginName = "csi"

// StorageProtocolV1 is version 1 of the storage family's protocol: the CSI
// services (csi.v1.Identity, Controller, Node) as the Container Storage
// Interface specification defines them, beside the base protocol.
const StorageProtocolV1 = 1

// CSIVersionedPlugins returns the storage protocol versions this SDK
// speaks, each with its go-plugin plugin set, as a host dispenses them (no
// implementation: what is dispensed is a *Conn).
func CSIVersionedPlugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{StorageProtocolV1: {CSIPluginName: &FamilyPlugin{}}}
}

// RegisterCSI registers a CSI driver's services on s: identity always,
// controller and node when not nil (a node-only driver has no controller
// service, and says so in GetPluginCapabilities).
func RegisterCSI(s *grpc.Server, identity csi.IdentityServer, controller csi.ControllerServer, node csi.NodeServer) {
	csi.RegisterIdentityServer(s, identity)
	if controller != nil {
		csi.RegisterControllerServer(s, controller)
	}
	if node != nil {
		csi.RegisterNodeServer(s, node)
	}
}

// ServeCSI serves a CSI driver as a fedlet storage plugin: its Identity,
// Controller and Node services exactly as the CSI specification defines
// them, with the base protocol (fedlet.plugin.v1), over go-plugin with the
// same logging, handshake and mutual TLS as ServeRuntime. controller or
// node may be nil for a driver without that service.
//
// The plugin is described by identity's GetPluginInfo (name and vendor
// version) and its GetPluginCapabilities (the service types' names, as
// "CONTROLLER_SERVICE"), unless WithDescription says otherwise. The base
// Configure reaches the function given WithConfigure: it is how the agent
// tells a driver its configuration and the node it serves.
//
// ServeCSI returns when the host shuts the plugin down. Run outside a host,
// it prints that the program is a plugin and exits with status 1; a driver
// that also runs beside a plain kubelet serves ServeCSIEndpoint instead.
func ServeCSI(identity csi.IdentityServer, controller csi.ControllerServer, node csi.NodeServer, opts ...ServeOption) {
	cfg := collectOptions(opts)
	d := cfg.description
	if d.Name == "" || d.Version == "" || d.Capabilities == nil {
		described, err := DescribeCSI(context.Background(), identity)
		if err != nil {
			fmt.Fprintf(os.Stderr, "describe the CSI driver: %v\n", err)
			os.Exit(1)
		}
		if d.Name == "" {
			d.Name = described.Name
		}
		if d.Version == "" {
			d.Version = described.Version
		}
		if d.Capabilities == nil {
			d.Capabilities = described.Capabilities
		}
	}
	ServeFamily(Family{
		Name:       StorageFamily,
		PluginName: CSIPluginName,
		Version:    StorageProtocolV1,
		Register:   func(s *grpc.Server) { RegisterCSI(s, identity, controller, node) },
		Configure:  cfg.configure,
	}, d, append(opts, WithDescription(d))...) // d last: the author's own WithDescription, completed
}

// DescribeCSI describes a CSI driver in the base protocol's terms, from its
// Identity service: its name, vendor version and the types of the services
// it declares (CONTROLLER_SERVICE, VOLUME_ACCESSIBILITY_CONSTRAINTS, ...).
func DescribeCSI(ctx context.Context, identity csi.IdentityServer) (Description, error) {
	info, err := identity.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil {
		return Description{}, fmt.Errorf("GetPluginInfo: %w", err)
	}
	caps, err := identity.GetPluginCapabilities(ctx, &csi.GetPluginCapabilitiesRequest{})
	if err != nil {
		return Description{}, fmt.Errorf("GetPluginCapabilities: %w", err)
	}
	d := Description{Name: info.GetName(), Version: info.GetVendorVersion(), Capabilities: []string{}}
	for _, c := range caps.GetCapabilities() {
		if t := c.GetService().GetType(); t != csi.PluginCapability_Service_UNKNOWN {
			d.Capabilities = append(d.Capabilities, t.String())
		}
	}
	return d, nil
}

// WithConfigure gives a plugin served by ServeCSI the base protocol's
// Configure: its configuration (JSON), the nodes it serves and their
// settings. Without it, Configure succeeds and is ignored.
func WithConfigure(configure func(ctx context.Context, req *pluginv1.ConfigureRequest) error) ServeOption {
	return func(c *serveConfig) { c.configure = configure }
}

// ServeCSIEndpoint serves a CSI driver's services on endpoint, as a CSI
// driver beside a kubelet is served: a plain gRPC server (no go-plugin, no
// TLS, no base protocol; the request rules still refuse a call without a
// field the specification requires) on a unix socket, "unix:///path/csi.sock" or a
// bare path. A stale socket file is removed first. It returns when ctx ends
// (after stopping the server gracefully) or the server fails.
func ServeCSIEndpoint(ctx context.Context, endpoint string, identity csi.IdentityServer, controller csi.ControllerServer, node csi.NodeServer, opts ...grpc.ServerOption) error {
	path, err := UnixEndpointPath(endpoint)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("serve CSI on %s: %w", endpoint, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("serve CSI on %s: remove the stale socket: %w", endpoint, err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("serve CSI on %s: %w", endpoint, err)
	}
	srv := grpc.NewServer(append(NewRequestRules().ServerOptions(), opts...)...)
	RegisterCSI(srv, identity, controller, node)
	if err := serveUntil(ctx, srv, lis); err != nil {
		return fmt.Errorf("serve CSI on %s: %w", endpoint, err)
	}
	return nil
}

// serveUntil serves srv on lis until ctx ends, then stops it gracefully and
// returns nil; if serving fails first, it stops srv and returns why.
func serveUntil(ctx context.Context, srv *grpc.Server, lis net.Listener) error {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		srv.GracefulStop()
	}()
	err := srv.Serve(lis)
	if ctx.Err() != nil {
		<-stopped
		return nil
	}
	srv.Stop()
	<-stopped
	return err
}

// UnixEndpointPath is the socket path of a CSI endpoint:
// "unix:///run/csi.sock" or "/run/csi.sock". Other schemes are refused: CSI
// drivers beside a kubelet listen on unix sockets.
func UnixEndpointPath(endpoint string) (string, error) {
	path, found := strings.CutPrefix(endpoint, "unix://")
	if !found && strings.Contains(endpoint, "://") {
		return "", fmt.Errorf("CSI endpoint %q: only unix:// endpoints are served", endpoint)
	}
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("CSI endpoint %q: the socket path must be absolute", endpoint)
	}
	return path, nil
}
