package example_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedlet/fedlet/plugins/conformance"
	"github.com/fedlet/fedlet/plugins/images/busybox/busyboxtest"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/runtime/example"
	"github.com/fedlet/fedlet/plugins/sdk/keeper"
)

// TestMain lets the test binary be the containers' supervisor, as the
// plugin's own main does: the in-process runtime starts it again as one.
func TestMain(m *testing.M) {
	keeper.Main()
	os.Exit(m.Run())
}

// require skips the test where containers cannot run (not root, no runc),
// and fails it instead when CI is set.
func require(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := exec.LookPath("runc"); err != nil {
		why = "no runc in PATH"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the example runtime cannot run containers here: %s", why)
	}
	t.Skipf("the example runtime cannot run containers here: %s", why)
}

// TestBinary builds the plugin's main and runs the checks that concern the
// process (its start, and the adoption of containers after kill -9) in
// binary mode. It runs before TestConformance: the in-process runtime makes
// this test process a subreaper (ociruntime.BecomeSubreaper), which would
// then adopt the plugin's keepers when the kit kills the plugin, and the
// kit finds the plugin among this process's children.
func TestBinary(t *testing.T) {
	require(t)
	bin := t.TempDir() + "/fedlet-runtime-example"
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/fedlet/fedlet/cmd/fedlet-runtime-example").CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}
	res := conformance.Test(t, conformance.Config{
		Plugin:       bin,
		PluginConfig: pluginConfig(t),
		Image:        busyboxtest.Registry(t),
		Timeout:      time.Minute,
		Run:          regexp.MustCompile(`^(handshake|describe|configure|get-node|adopt-after-plugin-restart)$`),
	})
	if len(res.Outcomes) != 5 {
		t.Errorf("%d checks ran, want 5", len(res.Outcomes))
	}
}

// TestConformance runs the whole container-level suite against the
// example runtime, in-process: no binary built, a real runc, images pulled
// from a real registry on loopback. Every check passes: the request rules
// the example does not check itself are the SDK's.
func TestConformance(t *testing.T) {
	require(t)
	start := time.Now()
	res := conformance.RunServer(t.Context(), func() runtimev1.RuntimeServer { return example.New() }, conformance.Config{
		PluginConfig: pluginConfig(t),
		Image:        busyboxtest.Registry(t),
		Timeout:      30 * time.Second,
	}, nil)
	t.Logf("%s in %v", res.Summary(), time.Since(start).Round(time.Second))
	if res.Suite != conformance.ContainerSuite || len(res.Outcomes) != len(conformance.Checks()) {
		t.Errorf("suite %q, %d checks ran; want all %d of the container suite", res.Suite, len(res.Outcomes), len(conformance.Checks()))
	}
	for _, o := range res.Outcomes {
		if !o.Passed() {
			t.Errorf("%s (%v): %v\n(rule: %s)", o.Check.Name, o.Duration.Round(time.Millisecond), o.Err, o.Check.Rule)
		}
	}
}

// pluginConfig gives the plugin a state directory of its own, short enough
// for the unix sockets in it. When the test ends, every check must have
// removed what it made: a container left in runc fails the test (and is
// deleted).
func pluginConfig(t *testing.T) []byte {
	dir, err := os.MkdirTemp("", "example-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		root := filepath.Join(dir, "runc")
		out, err := exec.Command("runc", "--root", root, "list", "-q").CombinedOutput()
		if err != nil {
			t.Errorf("list what runc still has: %v: %s", err, out)
		}
		for _, id := range strings.Fields(string(out)) {
			t.Errorf("container %s left behind in runc", id)
			_ = exec.Command("runc", "--root", root, "delete", "--force", id).Run()
		}
		mounts, _ := filepath.Glob(filepath.Join(dir, "pods", "*", "*", "rootfs"))
		for _, m := range mounts {
			t.Errorf("container filesystem %s left behind", m)
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
		_ = os.RemoveAll(dir)
	})
	cfg, err := json.Marshal(map[string]string{"stateDir": dir})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
