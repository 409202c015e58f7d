package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/fedlet/fedlet/plugins/conformance"
	"github.com/fedlet/fedlet/plugins/images/busybox"
	"github.com/fedlet/fedlet/plugins/runtime/containerd/containerdtest"
)

// TestContainerdPlugin runs the whole kit against fedlet's containerd
// plugin, built from this tree, on a throw-away containerd, pulling the
// busybox image from a real OCI registry on loopback.
func TestContainerdPlugin(t *testing.T) {
	d := containerdtest.StartT(t) // needs root: fails under CI, skips otherwise
	image := serveBusybox(t)
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

// serveBusybox serves an in-memory OCI registry (go-containerregistry's,
// a real distribution API) on loopback, pushes the busybox image into it
// and returns its reference.
func serveBusybox(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("registry: %v", err)
		}
	})

	img, err := busybox.Image()
	if err != nil {
		t.Fatalf("build busybox image: %v", err)
	}
	image := lis.Addr().String() + "/conformance/busybox:1"
	ref, err := name.ParseReference(image, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", image, err)
	}
	return image
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
