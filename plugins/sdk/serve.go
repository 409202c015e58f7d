package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	pluginv1 "github.com/fedlet/fedlet/plugins/proto/plugin/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// ServeRuntime serves impl as a fedlet runtime plugin. It is the whole main
// of a plugin once impl is built:
//
//   - slog's default logger becomes a JSON handler on stderr at the level the
//     host asked for (LogLevelEnv, "info" when unset), so the plugin's records
//     appear in the agent's log;
//   - the protocol's request rules (RequestRules) refuse a call for a node
//     impl does not serve, or without a field the protocol requires, before
//     impl sees it;
//   - go-plugin checks the handshake, negotiates the protocol version among
//     VersionedPlugins, sets up mutual TLS when the host asks for it
//     (AutoMTLS), and serves impl over gRPC;
//   - the same gRPC server serves the base protocol (pluginv1.Plugin) that
//     every family shares: Describe and Configure go to impl's own,
//     completed by the Description given WithDescription, and
//     ValidateConfig checks a configuration with the Description's fields
//     and Validate function.
//
// ServeRuntime returns when the host shuts the plugin down. Run outside a
// host, it prints that the program is a plugin and exits with status 1.
func ServeRuntime(impl runtimev1.RuntimeServer, opts ...ServeOption) {
	serve(VersionedPlugins(impl), runtimeHooks(impl), opts)
}

// ServeNetwork serves impl as a fedlet network plugin, exactly as
// ServeRuntime serves a runtime plugin: slog's default logger writes to the
// agent's log, and go-plugin negotiates the version among
// NetworkVersionedPlugins and serves impl over gRPC with mutual TLS.
//
// ServeNetwork returns when the host shuts the plugin down. Run outside a
// host, it prints that the program is a plugin and exits with status 1.
func ServeNetwork(impl networkv1.NetworkServer, opts ...ServeOption) {
	serve(NetworkVersionedPlugins(impl), networkHooks(impl), opts)
}

// ServeOption changes how ServeRuntime and ServeNetwork serve a plugin.
type ServeOption func(*serveConfig)

type serveConfig struct {
	grpcOptions    []grpc.ServerOption
	noRequestRules bool
	description    Description
	// configure is a family plugin's base Configure (WithConfigure).
	configure func(ctx context.Context, req *pluginv1.ConfigureRequest) error
}

// WithServerOptions adds options to the plugin's gRPC server, after those
// go-plugin sets (its mutual TLS): interceptors that measure or trace every
// call, say.
func WithServerOptions(opts ...grpc.ServerOption) ServeOption {
	return func(c *serveConfig) { c.grpcOptions = append(c.grpcOptions, opts...) }
}

// serve is the main of every family of plugin.
func serve(versions map[int]plugin.PluginSet, family familyHooks, opts []ServeOption) {
	cfg := collectOptions(opts)
	level := logLevelFromEnv()
	// go-plugin replaces os.Stderr with a pipe once it serves; the handler
	// keeps the real stderr, which is the stream the host parses.
	slog.SetDefault(slog.New(NewLogHandler(os.Stderr, level)))
	go exitWithParent(os.Getppid())

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: withBase(versions, &baseServer{desc: cfg.description, family: family}),
		GRPCServer:       cfg.grpcServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Output:     os.Stderr,
			JSONFormat: true,
			Level:      hclog.LevelFromString(LevelName(level)),
		}),
	})
}

// NewRuntimeServer returns the gRPC server ServeRuntime serves impl on, at
// the newest protocol version the SDK speaks, with the same request rules,
// base protocol and options, but without go-plugin's process handshake: for
// serving impl inside a test's own process (the conformance kit's
// in-process mode). The caller serves it on a listener of its own.
func NewRuntimeServer(impl runtimev1.RuntimeServer, opts ...ServeOption) (*grpc.Server, error) {
	cfg := collectOptions(opts)
	versions := withBase(VersionedPlugins(impl), &baseServer{desc: cfg.description, family: runtimeHooks(impl)})
	newest := slices.Max(slices.Collect(maps.Keys(versions)))
	p, ok := versions[newest][RuntimePluginName].(plugin.GRPCPlugin)
	if !ok {
		return nil, fmt.Errorf("the runtime plugin of protocol version %d is not a gRPC plugin", newest)
	}
	srv := cfg.grpcServer(nil)
	if err := p.GRPCServer(nil, srv); err != nil {
		return nil, fmt.Errorf("register the runtime: %w", err)
	}
	return srv, nil
}

func collectOptions(opts []ServeOption) *serveConfig {
	cfg := &serveConfig{}
	for _, o := range opts {
		o(cfg)
	}
	return cfg
}

// grpcServer is the plugin's gRPC server: go-plugin's options (its mutual
// TLS) first, then the request rules, then the author's own.
func (c *serveConfig) grpcServer(base []grpc.ServerOption) *grpc.Server {
	return plugin.DefaultGRPCServer(append(append(base, c.requestRules().ServerOptions()...), c.grpcOptions...))
}

// exitWithParent ends the plugin when the agent that started it is gone (it
// was killed, so it could not stop the plugin): a restarted agent starts its
// own plugin process, and an orphan must not serve beside it.
func exitWithParent(ppid int) {
	for range time.Tick(time.Second) {
		if os.Getppid() != ppid {
			slog.Warn("the agent that started this plugin is gone; exiting", "agent_pid", ppid)
			os.Exit(0)
		}
	}
}

func logLevelFromEnv() slog.Level {
	if l, ok := ParseLevel(os.Getenv(LogLevelEnv)); ok {
		return l
	}
	return slog.LevelInfo
}
