package containerdtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/fedlet/fedlet/plugins/sdk/testenv"
)

// Require fails t when the machine cannot run containerd (not root, no
// binaries, no runc), or skips it if the developer opted out
// (testenv.SkipMissingEnv).
func Require(t testing.TB) {
	t.Helper()
	if why := Missing(); why != "" {
		testenv.Missing(t, "containerd tests cannot run: %s", why)
	}
}

// StartT starts a daemon in a fresh short directory under the system's
// temporary directory and stops it when t ends.
func StartT(t testing.TB) *Daemon {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("", "ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := Start(ctx, Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
	})
	return d
}
