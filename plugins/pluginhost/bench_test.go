package pluginhost

import (
	"context"
	"log/slog"
	"testing"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/sdktest"
)

// BenchmarkRuntimeCall measures one small unary call (GetNode) through the
// plugin host (go-plugin, gRPC over a unix socket with AutoMTLS, through
// Runtime.Client) against the same server called in-process.
func BenchmarkRuntimeCall(b *testing.B) {
	req := &runtimev1.GetNodeRequest{Node: "node-a"}

	b.Run("plugin", func(b *testing.B) {
		h, err := New(Config{Dirs: []string{testPluginDir}}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r, err := h.StartRuntime(ctx, testSpec())
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		defer func() { cancel(); <-r.Done() }()
		client := r.Client()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := client.GetNode(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("inprocess", func(b *testing.B) {
		ctx := context.Background()
		srv := sdktest.New("testplugin", "0.0.1")
		if _, err := srv.Configure(ctx, &runtimev1.ConfigureRequest{Nodes: testSpec().Nodes}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := srv.GetNode(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
