package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedlet/fedlet/plugins/sdk/testenv"
)

// testBinDir is where the components are: $FEDLET_BIN_DIR, or bin/ of the
// source tree.
func testBinDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("FEDLET_BIN_DIR"); dir != "" {
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, ok := FindSourceRoot(wd)
	if !ok {
		t.Fatalf("no fedlet source tree above %s", wd)
	}
	return filepath.Join(root, "bin")
}

// need fails the test when what it needs is missing (it skips if the
// developer opted out: testenv.SkipMissingEnv).
func need(t *testing.T, what string, ok bool) {
	t.Helper()
	testenv.Need(t, what, ok)
}

// needComponents checks that the components opts starts are built.
func needComponents(t *testing.T, opts Options) {
	t.Helper()
	if opts.Datastore == "" {
		opts.Datastore = DatastoreSQLite
	}
	missing := missingComponents(opts.BinDir, requiredComponents(opts))
	need(t, strings.Join(missing, ", ")+" in "+opts.BinDir+" (make components)", len(missing) == 0)
}

// startCluster starts a cluster on free ports in a temporary directory and
// stops it when the test ends.
func startCluster(t *testing.T, opts Options) *Cluster {
	t.Helper()
	if opts.BinDir == "" {
		opts.BinDir = testBinDir(t)
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Ports == (Ports{}) {
		ports, err := FreePorts()
		if err != nil {
			t.Fatal(err)
		}
		opts.Ports = ports
	}
	needComponents(t, opts)
	opts.Progress = testWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	return c
}

// testWriter shows progress lines in the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
