package sdk

import (
	"github.com/hashicorp/go-plugin"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Handshake is the go-plugin handshake shared by the agent and every fedlet
// plugin. The cookie is not a security measure: it only stops a plugin
// binary from running as an ordinary program by mistake. ProtocolVersion is
// the version assumed when a host offers no list of versions; the versions
// really negotiated are the keys of VersionedPlugins.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  RuntimeProtocolV1,
	MagicCookieKey:   "FEDLET_PLUGIN",
	MagicCookieValue: "2f7c1d3e9a6b4c58b0e1f2a3d4c5b6a7",
}

// RuntimePluginName is the plugin-type name under which a runtime plugin is
// served and dispensed.
const RuntimePluginName = "runtime"

// RuntimeProtocolV1 is version 1 of the runtime protocol
// (package runtimev1, fedlet.runtime.v1).
const RuntimeProtocolV1 = 1

// VersionedPlugins returns the runtime protocol versions this SDK speaks,
// each with its go-plugin plugin set. A plugin passes its implementation;
// the host passes nil, since it only dispenses clients.
//
// A future protocol version is added as another key beside
// RuntimeProtocolV1, so hosts and plugins of different ages settle on the
// newest version both know.
func VersionedPlugins(impl runtimev1.RuntimeServer) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		RuntimeProtocolV1: {RuntimePluginName: &RuntimePlugin{Impl: impl}},
	}
}
