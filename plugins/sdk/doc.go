// Package sdk is what a fedlet plugin author imports.
//
// A runtime plugin is a program whose main calls ServeRuntime with its
// implementation of the runtime protocol (runtimev1.RuntimeServer); a
// network plugin one whose main calls ServeNetwork with its implementation
// of the network protocol (networkv1.NetworkServer). The fedlet agent
// launches the program with github.com/hashicorp/go-plugin: the two sides
// check the handshake cookie, agree on a protocol version
// (VersionedPlugins, NetworkVersionedPlugins), and talk gRPC over a local
// socket protected by one-time mutual TLS certificates (AutoMTLS).
//
// Before a call reaches the implementation, the SDK enforces the
// protocol's request rules (RequestRules): the node named and served, the
// pod UID and names the protocol requires, the first message of each
// bidirectional stream. The implementation checks only what its backend
// alone can judge, and words its answers with the helpers of status.go
// (InvalidArgument, ContainerNotFound, ...).
//
// Beside its family's service, every plugin serves the base protocol
// (pluginv1, fedlet.plugin.v1) that all families share: Describe,
// Configure and ValidateConfig. The SDK serves it from the family's own
// Describe and Configure and from the Description given WithDescription
// (the config's fields and a Validate function returning ConfigErrors), so
// the agent can refuse a wrong config, naming the field and the fix, before
// it starts any node. ServeFamily serves a family that has only the base
// protocol (storage, observability).
//
// The plugin's log records, written with log/slog after ServeRuntime or
// ServeNetwork has set the default logger, appear in the agent's log with
// the plugin's name.
package sdk
