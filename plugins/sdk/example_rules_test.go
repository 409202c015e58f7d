package sdk_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// ServeRuntime puts the request rules in front of every plugin; a test
// that serves a plugin in its own process puts them in front of its gRPC
// server with ServerOptions. tinyRuntime (example_test.go) checks nothing,
// yet a call without a node, for a node it does not serve, or without a
// pod UID never reaches it.
func ExampleRequestRules() {
	dir, err := os.MkdirTemp("", "sdk-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	lis, err := net.Listen("unix", filepath.Join(dir, "plugin.sock"))
	if err != nil {
		fmt.Println(err)
		return
	}
	server := grpc.NewServer(sdk.NewRequestRules().ServerOptions()...)
	runtimev1.RegisterRuntimeServer(server, tinyRuntime{})
	go func() { _ = server.Serve(lis) }()
	defer server.Stop()
	conn, err := grpc.NewClient("unix://"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	rt := runtimev1.NewRuntimeClient(conn)
	ctx := context.Background()

	// The rules learn the nodes served from Configure as it passes.
	if _, err := rt.Configure(ctx, &runtimev1.ConfigureRequest{Nodes: []string{"node-a"}}); err != nil {
		fmt.Println(err)
		return
	}
	for _, call := range []func() error{
		func() error { _, err := rt.GetNode(ctx, &runtimev1.GetNodeRequest{}); return err },
		func() error { _, err := rt.GetNode(ctx, &runtimev1.GetNodeRequest{Node: "node-b"}); return err },
		func() error {
			_, err := rt.RemoveSandbox(ctx, &runtimev1.RemoveSandboxRequest{Node: "node-a"})
			return err
		},
		// Well formed: tinyRuntime answers, here that it has no GetNode.
		func() error { _, err := rt.GetNode(ctx, &runtimev1.GetNodeRequest{Node: "node-a"}); return err },
	} {
		st := status.Convert(call())
		fmt.Printf("%s: %s\n", st.Code(), st.Message())
	}
	// Output:
	// InvalidArgument: node: must be set
	// NotFound: node "node-b" is not served by this plugin
	// InvalidArgument: pod_uid: must be set
	// Unimplemented: method GetNode not implemented
}

// What only the plugin can judge it answers itself, with the helpers that
// word the protocol's answers: a field its backend cannot take, a
// container the node does not have.
func ExampleInvalidArgument() {
	stop := func(req *runtimev1.StopContainerRequest) error {
		if req.GetGracePeriodSeconds() < 0 {
			return sdk.InvalidArgument("grace_period_seconds", "must not be negative")
		}
		return sdk.ContainerNotFound(req.GetPodUid(), req.GetName())
	}
	for _, req := range []*runtimev1.StopContainerRequest{
		{Node: "node-a", PodUid: "6a1e0c4e", Name: "app", GracePeriodSeconds: -1},
		{Node: "node-a", PodUid: "6a1e0c4e", Name: "app", GracePeriodSeconds: 30},
	} {
		st := status.Convert(stop(req))
		fmt.Printf("%s: %s\n", st.Code(), st.Message())
	}
	// Output:
	// InvalidArgument: grace_period_seconds: must not be negative
	// NotFound: container app of pod 6a1e0c4e not found
}
