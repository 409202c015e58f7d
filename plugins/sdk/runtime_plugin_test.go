package sdk_test

import (
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
	"github.com/fedlet/fedlet/plugins/sdk/sdktest"
)

// TestRuntimePluginInProcess serves a runtime through go-plugin's in-process
// test mode and calls it through the dispensed client, with no binary to
// build. The pluginhost tests cover real processes and AutoMTLS.
func TestRuntimePluginInProcess(t *testing.T) {
	ctx := t.Context()
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.VersionedPlugins(sdktest.New("mem", "1.0")),
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
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: sdk.Handshake,
		// A reattached client skips negotiation and uses Plugins as they are.
		Plugins:          sdk.VersionedPlugins(nil)[rc.ProtocolVersion],
		Reattach:         rc,
		Logger:           hclog.NewNullLogger(),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
	})
	t.Cleanup(client.Kill)

	proto, err := client.Client()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	raw, err := proto.Dispense(sdk.RuntimePluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	conn, ok := raw.(*sdk.RuntimeConn)
	if !ok {
		t.Fatalf("dispensed %T, want *RuntimeConn", raw)
	}
	if conn.Conn == nil || conn.Exited == nil {
		t.Fatalf("RuntimeConn lacks its conn or exit channel: %+v", conn)
	}
	desc, err := conn.Describe(ctx, &runtimev1.DescribeRequest{})
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if desc.GetName() != "mem" || desc.GetVersion() != "1.0" {
		t.Errorf("Describe = %v", desc)
	}
}

func TestRuntimePluginWithoutImplRefusesToServe(t *testing.T) {
	if err := (&sdk.RuntimePlugin{}).GRPCServer(nil, nil); err == nil {
		t.Error("GRPCServer with no Impl succeeded")
	}
}
