package sdk_test

import (
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
	"github.com/fedlet/fedlet/plugins/sdk/sdktest"
)

// TestNetworkPluginInProcess serves a network through go-plugin's in-process
// test mode and calls it through the dispensed client. The pluginhost tests
// cover real processes and AutoMTLS.
func TestNetworkPluginInProcess(t *testing.T) {
	ctx := t.Context()
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.NetworkVersionedPlugins(sdktest.NewNetwork("mem", "1.0")),
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           hclog.NewNullLogger(),
		Test:             &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed},
	})
	t.Cleanup(func() { <-closed })

	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-closed:
		t.Fatal("plugin server stopped before serving")
	}
	if rc.ProtocolVersion != sdk.NetworkProtocolV1 {
		t.Errorf("served protocol version %d, want %d", rc.ProtocolVersion, sdk.NetworkProtocolV1)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.NetworkVersionedPlugins(nil)[rc.ProtocolVersion],
		Reattach:         rc,
		Logger:           hclog.NewNullLogger(),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
	})
	t.Cleanup(client.Kill)

	proto, err := client.Client()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	raw, err := proto.Dispense(sdk.NetworkPluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	conn, ok := raw.(*sdk.NetworkConn)
	if !ok {
		t.Fatalf("dispensed %T, want *NetworkConn", raw)
	}
	if conn.Conn == nil || conn.Exited == nil {
		t.Fatalf("NetworkConn lacks its conn or exit channel: %+v", conn)
	}
	desc, err := conn.Describe(ctx, &networkv1.DescribeRequest{})
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if desc.GetName() != "mem" || desc.GetVersion() != "1.0" {
		t.Errorf("Describe = %v", desc)
	}
}

func TestNetworkPluginWithoutImplRefusesToServe(t *testing.T) {
	if err := (&sdk.NetworkPlugin{}).GRPCServer(nil, nil); err == nil {
		t.Error("GRPCServer with no Impl succeeded")
	}
}
