package conformance_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/fedlet/fedlet/plugins/conformance"
	"github.com/fedlet/fedlet/plugins/images/busybox/busyboxtest"
	"github.com/fedlet/fedlet/plugins/runtime/containerd/containerdtest"
)

// TestContainerdPlugin runs the whole kit against fedlet's containerd
// plugin, built from this tree, on a throw-away containerd, pulling the
// busybox image from a real OCI registry on loopback.
func TestContainerdPlugin(t *testing.T) {
	d := containerdtest.StartT(t) // needs root: fails under CI, skips otherwise
	image := busyboxtest.Registry(t)
	plugin := buildPlugin(t, t.TempDir(), "fedlet-runtime-containerd", "github.com/fedlet/fedlet/cmd/fedlet-runtime-containerd")

	const namespace = "conformance"
	pluginConfig, err := json.Marshal(map[string]any{
		"address":     d.Address,
		"namespace":   namespace,
		"stateDir":    t.TempDir(),
		"nodeAddress": "127.0.0.1",
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin host and plugin log:\n%s", logs.String())
		}
	})

	conformance.Test(t, conformance.Config{
		Plugin:       plugin,
		PluginConfig: pluginConfig,
		Image:        image,
		Timeout:      time.Minute,
		Log:          slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})

	// Every check removed what it made.
	c, err := d.Client(namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	left, err := c.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ctr := range left {
		t.Errorf("container %s left behind in containerd", ctr.ID())
	}
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
