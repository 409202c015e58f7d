package conformance_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fedlet/fedlet/plugins/conformance"
)

// buildPlugin builds the main package pkg into dir under name.
func buildPlugin(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	out, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return path
}

// The in-memory test plugin of the plugin host's tests: it serves the SDK's
// handshake and answers sandboxes, but runs no containers.
func buildTestPlugin(t *testing.T) string {
	return buildPlugin(t, t.TempDir(), "fedlet-testplugin", "github.com/fedlet/fedlet/plugins/pluginhost/testdata/testplugin")
}

func outcomes(res conformance.Result) map[string]conformance.Outcome {
	m := map[string]conformance.Outcome{}
	for _, o := range res.Outcomes {
		m[o.Check.Name] = o
	}
	return m
}

// TestKitPassesOnlyWhatPasses runs the kit against a plugin that does
// sandboxes and nothing else: what it does passes, everything else fails
// with a reason, and nothing is reported passed that did not pass.
func TestKitPassesOnlyWhatPasses(t *testing.T) {
	path := buildTestPlugin(t)
	var report bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	res := conformance.Run(ctx, conformance.Config{
		Plugin:  path,
		Image:   "registry.invalid/none:1",
		Timeout: 20 * time.Second,
	}, conformance.TextReporter(&report, false))
	t.Logf("report:\n%s", report.String())

	if len(res.Outcomes) != len(conformance.Checks()) {
		t.Fatalf("%d outcomes for %d checks", len(res.Outcomes), len(conformance.Checks()))
	}
	if res.Suite != conformance.ContainerSuite || !strings.HasPrefix(report.String(), "SUITE containers: Describe of testplugin 0.0.1 does not declare CAPABILITY_WHOLE_PODS") {
		t.Errorf("suite %q (%s); report:\n%s", res.Suite, res.Why, report.String())
	}
	wantPass := map[string]bool{
		"handshake": true, "describe": true, "configure": true, "get-node": true,
		"sandbox-run-idempotent": true, "sandbox-listed": true,
		"sandbox-remove-repeated": true, "sandbox-remove-unknown": true,
	}
	for _, o := range res.Outcomes {
		if o.Passed() != wantPass[o.Check.Name] {
			t.Errorf("%s: passed %v, want %v (err: %v)", o.Check.Name, o.Passed(), wantPass[o.Check.Name], o.Err)
		}
		if !o.Passed() && strings.TrimSpace(o.Err.Error()) == "" {
			t.Errorf("%s failed without a reason", o.Check.Name)
		}
		if o.Check.Rule == "" {
			t.Errorf("%s names no rule", o.Check.Name)
		}
	}
	o := outcomes(res)
	// The in-memory plugin answers NotFound for an empty node, and accepts
	// RemoveSandbox without a pod UID: both are findings of the kit.
	if err := o["bad-input-no-node"].Err; err == nil || !strings.Contains(err.Error(), "want InvalidArgument") {
		t.Errorf("bad-input-no-node: %v", err)
	}
	if err := o["bad-input-no-pod-uid"].Err; err == nil || !strings.Contains(err.Error(), "RemoveSandbox without pod UID: succeeded, want InvalidArgument") {
		t.Errorf("bad-input-no-pod-uid: %v", err)
	}
	if !strings.Contains(report.String(), "FAIL  image-pull (") || !strings.Contains(report.String(), "PASS  handshake (") {
		t.Errorf("report lacks PASS/FAIL lines:\n%s", report.String())
	}
	if got, want := res.Summary(), "8 passed, "; !strings.HasPrefix(got, want) || res.OK() {
		t.Errorf("summary %q (OK %v), want it to start with %q and not be OK", got, res.OK(), want)
	}
}

// TestKitReportsTheStageThatFailed: a plugin that refuses its config passes
// the handshake and fails configure; one that speaks another protocol
// version fails the handshake; a binary whose pin differs is refused. Every
// other check says it did not run.
func TestKitReportsTheStageThatFailed(t *testing.T) {
	path := buildTestPlugin(t)
	for _, c := range []struct {
		name       string
		cfg        conformance.Config
		env        string
		failStage  string
		passStages []string
		why        string
	}{
		{
			name:       "configure refused",
			cfg:        conformance.Config{PluginConfig: []byte(`{"failConfigure":"no thanks"}`)},
			failStage:  "configure",
			passStages: []string{"handshake"},
			why:        "no thanks",
		},
		{
			name:       "config invalid",
			cfg:        conformance.Config{PluginConfig: []byte(`{"invalid":"names no check"}`)},
			failStage:  "configure",
			passStages: []string{"handshake"},
			why:        "config field checks[1].name: names no check (fix: leave invalid out)",
		},
		{
			name:      "protocol version 2 only",
			env:       "2",
			failStage: "handshake",
			why:       "negotiate the runtime protocol version",
		},
		{
			name:      "checksum mismatch",
			cfg:       conformance.Config{Checksum: "sha256:" + strings.Repeat("0", 64)},
			failStage: "handshake",
			why:       "checksum mismatch",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("TESTPLUGIN_PROTOCOL", c.env)
			}
			cfg := c.cfg
			cfg.Plugin = path
			cfg.Timeout = 20 * time.Second
			res := conformance.Run(t.Context(), cfg, nil)
			o := outcomes(res)
			for _, s := range c.passStages {
				if !o[s].Passed() {
					t.Errorf("%s failed: %v", s, o[s].Err)
				}
			}
			if err := o[c.failStage].Err; err == nil || !strings.Contains(err.Error(), c.why) {
				t.Errorf("%s: %v, want a failure saying %q", c.failStage, err, c.why)
			}
			if res.Passed() != len(c.passStages) {
				t.Errorf("%d checks passed, want %d: %s", res.Passed(), len(c.passStages), res.Summary())
			}
			if err := o["sandbox-listed"].Err; err == nil || !strings.Contains(err.Error(), "not run: the plugin did not start") {
				t.Errorf("sandbox-listed: %v, want not run", err)
			}
		})
	}
}

func TestRunSelectsChecks(t *testing.T) {
	path := buildTestPlugin(t)
	res := conformance.Run(t.Context(), conformance.Config{Plugin: path, Run: regexp.MustCompile(`^sandbox-`)}, nil)
	if len(res.Outcomes) != 4 || !res.OK() {
		t.Errorf("sandbox checks: %s, %d outcomes", res.Summary(), len(res.Outcomes))
	}
}

func TestMissingBinaryFailsEveryCheck(t *testing.T) {
	res := conformance.Run(t.Context(), conformance.Config{Plugin: filepath.Join(t.TempDir(), "nothere")}, nil)
	if res.Passed() != 0 || res.Failed() != len(conformance.Checks()) {
		t.Errorf("a missing binary: %s", res.Summary())
	}
}

// The in-memory whole-pod plugin of the kit's tests: sdktest.WholePods,
// which runs pods in memory and no containers, its container-level calls
// answering Unimplemented.
func buildWholePodsPlugin(t *testing.T) string {
	return buildPlugin(t, t.TempDir(), "fedlet-wholepods", "github.com/fedlet/fedlet/plugins/conformance/testdata/wholepodsplugin")
}

// TestKitWholePodSuite runs the kit against a plugin that declares
// CAPABILITY_WHOLE_PODS and runs pods in memory: the kit chooses the
// whole-pod suite and says why; what the plugin models (pods created,
// listed, watched, deleted; refusals) passes, what needs real containers
// (logs, exec, attach, port-forward) or state outside the process
// (adoption after a restart) fails with a reason.
func TestKitWholePodSuite(t *testing.T) {
	path := buildWholePodsPlugin(t)
	var report bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	res := conformance.Run(ctx, conformance.Config{
		Plugin:  path,
		Image:   "registry.invalid/none:1",
		Timeout: 20 * time.Second,
	}, conformance.TextReporter(&report, false))
	t.Logf("report:\n%s", report.String())

	if res.Suite != conformance.WholePodSuite {
		t.Fatalf("suite %q (%s), want %q", res.Suite, res.Why, conformance.WholePodSuite)
	}
	if !strings.HasPrefix(report.String(), "SUITE whole-pods: Describe of wholepodsplugin 0.0.1 declares CAPABILITY_WHOLE_PODS") {
		t.Errorf("the report does not begin with the suite and why:\n%s", report.String())
	}
	if len(res.Outcomes) != len(conformance.WholePodChecks()) {
		t.Fatalf("%d outcomes for %d checks", len(res.Outcomes), len(conformance.WholePodChecks()))
	}
	wantPass := map[string]bool{
		"handshake": true, "describe": true, "configure": true,
		"whole-pods-declared": true, "get-node": true, "container-calls-unimplemented": true,
		"pod-create-runs": true, "pod-create-idempotent": true, "pod-create-same-name": true,
		"pod-delete": true, "pod-delete-unknown": true,
		"pod-bad-input-no-node": true, "pod-bad-input-no-pod-uid": true, "pod-bad-input-undecodable": true, "pod-unknown-node": true,
	}
	names := map[string]bool{}
	for _, o := range res.Outcomes {
		if names[o.Check.Name] {
			t.Errorf("two checks named %s", o.Check.Name)
		}
		names[o.Check.Name] = true
		if o.Passed() != wantPass[o.Check.Name] {
			t.Errorf("%s: passed %v, want %v (err: %v)", o.Check.Name, o.Passed(), wantPass[o.Check.Name], o.Err)
		}
		if !o.Passed() && strings.TrimSpace(o.Err.Error()) == "" {
			t.Errorf("%s failed without a reason", o.Check.Name)
		}
		if o.Check.Rule == "" {
			t.Errorf("%s names no rule", o.Check.Name)
		}
	}
	o := outcomes(res)
	for name, why := range map[string]string{
		"pod-logs":                       "Unimplemented",
		"pod-config-objects":             "ContainerLogs of app: rpc error: code = Unimplemented",
		"pod-adopt-after-plugin-restart": "after the restart ListPods does not list pod",
	} {
		if err := o[name].Err; err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: %v, want a failure saying %q", name, err, why)
		}
	}
}

// TestKitWholePodsMustNotRunContainers: a whole-pod plugin whose
// container-level calls answer as if it ran containers fails the check
// that says they must not.
func TestKitWholePodsMustNotRunContainers(t *testing.T) {
	path := buildWholePodsPlugin(t)
	t.Setenv("WHOLEPODS_CONTAINER_CALLS", "1")
	res := conformance.Run(t.Context(), conformance.Config{
		Plugin: path, Timeout: 20 * time.Second, Run: regexp.MustCompile(`^container-calls-unimplemented$`),
	}, nil)
	if res.Suite != conformance.WholePodSuite || len(res.Outcomes) != 1 {
		t.Fatalf("suite %q, %d outcomes", res.Suite, len(res.Outcomes))
	}
	err := res.Outcomes[0].Err
	for _, want := range []string{"RunSandbox: succeeded, want Unimplemented", "ListSandboxes: succeeded, want Unimplemented", "PullImage: rpc error: code = Unimplemented"} {
		if want == "PullImage: rpc error: code = Unimplemented" {
			// sdktest.Runtime leaves PullImage unimplemented: no finding.
			if err != nil && strings.Contains(err.Error(), "PullImage") {
				t.Errorf("PullImage reported: %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("container-calls-unimplemented: %v, want a failure saying %q", err, want)
		}
	}
}
