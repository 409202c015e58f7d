// Package busyboxtest serves the busybox image from a throw-away OCI
// registry on loopback, for tests of runtime plugins (the conformance
// kit's Config.Image).
package busyboxtest

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/fedlet/fedlet/plugins/images/busybox"
)

// Registry serves an in-memory OCI registry on loopback until t ends,
// pushes the busybox image into it and returns the image's reference.
func Registry(t testing.TB) string {
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
