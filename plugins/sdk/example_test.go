package sdk_test

import (
	"context"
	"log/slog"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// tinyRuntime is a runtime plugin that only describes itself and accepts its
// configuration; the calls it does not implement answer codes.Unimplemented.
type tinyRuntime struct {
	runtimev1.UnimplementedRuntimeServer
}

func (tinyRuntime) Describe(context.Context, *runtimev1.DescribeRequest) (*runtimev1.DescribeResponse, error) {
	return &runtimev1.DescribeResponse{Name: "tiny", Version: "0.1.0"}, nil
}

func (tinyRuntime) Configure(_ context.Context, req *runtimev1.ConfigureRequest) (*runtimev1.ConfigureResponse, error) {
	// This record shows up in the agent's log, with plugin=<process name>.
	slog.Info("configured", "nodes", req.GetNodes())
	return &runtimev1.ConfigureResponse{}, nil
}

// The main of a runtime plugin is one call. The agent launches the built
// binary; run by hand, it says it is a plugin and exits.
func ExampleServeRuntime() {
	sdk.ServeRuntime(tinyRuntime{})
}
