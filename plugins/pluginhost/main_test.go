package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testPluginName is the file name the test runtime plugin is built under,
// testNetworkName the test network plugin's, testFamilyName the plugin's of
// a family registered by the tests, testCSIName the test CSI driver's.
const (
	testPluginName  = "fedlet-testplugin"
	testNetworkName = "testnetwork"
	testFamilyName  = "testfamily"
	testCSIName     = "testcsi"
)

// testPluginDir holds the test plugin binaries, built once by TestMain.
var testPluginDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	testPluginDir = dir
	// One go build makes them all, named after their directories.
	out, err := exec.Command("go", "build", "-o", dir+"/", "./testdata/testplugin", "./testdata/"+testNetworkName, "./testdata/"+testFamilyName, "./testdata/"+testCSIName).CombinedOutput()
	if err == nil {
		err = os.Rename(filepath.Join(dir, "testplugin"), filepath.Join(dir, testPluginName))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "build test plugins: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logBuffer collects the agent's log as JSON records.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(b.String())), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		recs = append(recs, rec)
	}
	return recs
}

// newTestHost returns a Host that finds the test plugin, logging into the
// returned buffer, which the test prints when it fails.
func newTestHost(t *testing.T, cfg Config) (*Host, *logBuffer) {
	t.Helper()
	if cfg.Dirs == nil {
		cfg.Dirs = []string{testPluginDir}
	}
	logs := &logBuffer{}
	h, err := New(cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", logs)
		}
	})
	return h, logs
}

// startTestRuntime starts the test plugin and stops it when the test ends.
func startTestRuntime(t *testing.T, h *Host, spec RuntimeSpec) *Runtime {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := h.StartRuntime(ctx, spec)
	if err != nil {
		cancel()
		t.Fatalf("StartRuntime: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.Done():
		case <-time.After(time.Minute):
			t.Error("runtime did not stop within a minute of its context ending")
		}
	})
	return r
}

func testSpec() RuntimeSpec {
	return RuntimeSpec{
		Name:   "mem",
		Plugin: testPluginName,
		Config: []byte(`{"greeting":"hello"}`),
		Nodes:  []string{"node-a", "node-b"},
	}
}
