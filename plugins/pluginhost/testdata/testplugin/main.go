// Command testplugin is the runtime plugin the pluginhost tests launch: the
// in-memory sdktest.Runtime, plus ways to misbehave on demand.
//
// Environment:
//
//	TESTPLUGIN_EXIT_AT_START=<code>  write a line to stderr and exit with code before serving
//	TESTPLUGIN_PROTOCOL=<version>    offer only this runtime protocol version, and
//	                                 no base protocol, as a plugin built before it
//
// Configure's JSON config:
//
//	{"failConfigure": "why"}  Configure fails with that message
//	{"invalid": "why"}        ValidateConfig answers a violation of the
//	                          field "checks[1].name" with that message
//	{"greeting": 3}           ValidateConfig answers that greeting is no
//	                          string (the SDK's check of the described fields)
//
// Configure logs a record with slog and prints a line to stdout.
//
// PullImage of the image "hang" answers nothing until the call ends, as a
// plugin that passes its health checks but hangs a call; other images are
// sdktest.Runtime's.
//
// GetNode reports, in its capacity map, the process's pid ("test/pid"), the
// number of Configure calls ("test/configure-calls"), the config
// ("test/config") and the transport of the call ("test/transport": "tls"
// when the host's call came over mutual TLS).
//
// It is served without the SDK's request rules (sdk.WithoutRequestRules):
// the conformance kit's own tests need a plugin that breaks them, to see
// the kit report it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
	"github.com/fedlet/fedlet/plugins/sdk/sdktest"
)

type testRuntime struct {
	*sdktest.Runtime
}

type testConfig struct {
	FailConfigure string `json:"failConfigure"`
	Invalid       string `json:"invalid"`
}

// description is the plugin's base description: its fields, and a
// validation that refuses "invalid".
var description = sdk.Description{
	Config: []sdk.ConfigField{
		{Name: "greeting", Type: sdk.TypeString, Description: "a word the plugin keeps"},
		{Name: "failConfigure", Type: sdk.TypeString, Description: "makes Configure fail with this message"},
		{Name: "invalid", Type: sdk.TypeString, Description: "makes ValidateConfig answer a violation with this message"},
	},
	Validate: func(config []byte, _ []string) error {
		var cfg testConfig
		if len(config) > 0 {
			if err := json.Unmarshal(config, &cfg); err != nil {
				return err
			}
		}
		if cfg.Invalid != "" {
			return &sdk.ConfigError{Field: "checks[1].name", Message: cfg.Invalid, Fix: "leave invalid out"}
		}
		return nil
	},
}

func (r testRuntime) Configure(ctx context.Context, req *runtimev1.ConfigureRequest) (*runtimev1.ConfigureResponse, error) {
	var cfg testConfig
	if len(req.GetConfig()) > 0 {
		if err := json.Unmarshal(req.GetConfig(), &cfg); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "parse config: %v", err)
		}
	}
	if cfg.FailConfigure != "" {
		slog.Error("refusing configuration", "reason", cfg.FailConfigure)
		return nil, status.Error(codes.InvalidArgument, cfg.FailConfigure)
	}
	resp, err := r.Runtime.Configure(ctx, req)
	_, _, calls := r.Configured()
	slog.Info("test plugin configured", "nodes", req.GetNodes(), "calls", calls)
	// Plain output, which go-plugin carries over its stdio stream.
	fmt.Println("testplugin: configure done")
	return resp, err
}

func (r testRuntime) GetNode(ctx context.Context, req *runtimev1.GetNodeRequest) (*runtimev1.Node, error) {
	node, err := r.Runtime.GetNode(ctx, req)
	if err != nil {
		return nil, err
	}
	config, _, calls := r.Configured()
	transport := "insecure"
	if p, ok := peer.FromContext(ctx); ok {
		if _, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			transport = "tls"
		}
	}
	capacity := map[string]string{}
	for k, v := range node.Capacity {
		capacity[k] = v
	}
	capacity["test/pid"] = strconv.Itoa(os.Getpid())
	capacity["test/configure-calls"] = strconv.Itoa(calls)
	capacity["test/config"] = string(config)
	capacity["test/transport"] = transport
	node.Capacity = capacity
	return node, nil
}

func (r testRuntime) PullImage(ctx context.Context, req *runtimev1.PullImageRequest) (*runtimev1.PullImageResponse, error) {
	if req.GetImage() == "hang" {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return r.Runtime.PullImage(ctx, req)
}

func main() {
	if code := os.Getenv("TESTPLUGIN_EXIT_AT_START"); code != "" {
		n, _ := strconv.Atoi(code)
		fmt.Fprintln(os.Stderr, "testplugin: exiting at start as asked")
		os.Exit(n)
	}
	impl := testRuntime{sdktest.New("testplugin", "0.0.1")}
	if v := os.Getenv("TESTPLUGIN_PROTOCOL"); v != "" {
		version, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testplugin: TESTPLUGIN_PROTOCOL:", err)
			os.Exit(2)
		}
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{version: {sdk.RuntimePluginName: &sdk.RuntimePlugin{Impl: impl}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
		return
	}
	sdk.ServeRuntime(impl, sdk.WithoutRequestRules(), sdk.WithDescription(description))
}
