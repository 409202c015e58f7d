package pluginhost

import (
	"context"
	"errors"
	"testing"
)

// A plugin built before the base protocol (the runtime protocol v1 only)
// is described and configured through its family's own calls, and has
// nothing checked before Configure.
func TestPluginWithoutBaseUsesItsFamilysCalls(t *testing.T) {
	t.Setenv("TESTPLUGIN_PROTOCOL", "1")
	h, _ := newTestHost(t, Config{})
	spec := testSpec()
	r := startTestRuntime(t, h, spec)

	if r.proc.cur.Load().base {
		t.Fatal("the plugin without the base protocol was taken to serve it")
	}
	d := r.Describe()
	if d.GetName() != "testplugin" || d.GetVersion() != "0.0.1" || d.GetFamily() != "runtime" {
		t.Errorf("Describe() = %v; want testplugin 0.0.1 of family runtime", d)
	}
	info := nodeInfo(t, r, "node-a")
	if info["test/configure-calls"] != "1" || info["test/config"] != string(spec.Config) {
		t.Errorf("plugin configured %s times with %q; want once with %q", info["test/configure-calls"], info["test/config"], spec.Config)
	}
	settings := map[string]map[string][]byte{"node-c": {"kubeconfig": []byte("x")}}
	if err := r.Reconfigure(t.Context(), []string{"node-a", "node-c"}, settings); err != nil {
		t.Fatal(err)
	}
	if info := nodeInfo(t, r, "node-c"); info["test/configure-calls"] != "2" {
		t.Errorf("Reconfigure reached the plugin %s times in all, want twice", info["test/configure-calls"])
	}

	bad := spec
	bad.Config = []byte(`{"invalid": "no good"}`)
	if err := h.CheckConfig(t.Context(), RuntimeFamily, bad); err != nil {
		t.Errorf("CheckConfig of a plugin without ValidateConfig = %v; want nil, nothing to check", err)
	}
}

// A plugin built with the SDK serves the base protocol, and the host
// describes and configures it through it.
func TestPluginWithBaseIsConfiguredThroughIt(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	r := startTestRuntime(t, h, testSpec())
	if !r.proc.cur.Load().base {
		t.Error("the SDK's plugin was taken not to serve the base protocol")
	}
	if d := r.Describe(); d.GetFamily() != "runtime" || d.GetName() != "testplugin" {
		t.Errorf("Describe() = %v", d)
	}
	if info := nodeInfo(t, r, "node-a"); info["test/configure-calls"] != "1" {
		t.Errorf("plugin configured %s times, want once", info["test/configure-calls"])
	}
}

// ValidateConfig's violations are a *ConfigError, from CheckConfig and
// from a start alike, each with its field, message and fix.
func TestValidateConfigViolationIsAConfigError(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	spec := testSpec()
	if err := h.CheckConfig(t.Context(), RuntimeFamily, spec); err != nil {
		t.Fatalf("CheckConfig of a valid config: %v", err)
	}

	for _, tc := range []struct {
		config, field, message, fix, formatted string
	}{
		{`{"invalid": "no good"}`, "checks[1].name", "no good", "leave invalid out",
			"runtimes[0].config.checks[1].name: no good (fix: leave invalid out)"},
		{`{"greeting": 3}`, "greeting", "expected string, got JSON integer", "give greeting a JSON string",
			"runtimes[0].config.greeting: expected string, got JSON integer (fix: give greeting a JSON string)"},
	} {
		spec.Config = []byte(tc.config)
		for what, err := range map[string]error{
			"CheckConfig":  h.CheckConfig(t.Context(), RuntimeFamily, spec),
			"StartRuntime": startErr(h, spec),
		} {
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Violations) != 1 {
				t.Errorf("%s with %s = %v; want a ConfigError with one violation", what, tc.config, err)
				continue
			}
			v := ce.Violations[0]
			if v.GetField() != tc.field || v.GetMessage() != tc.message || v.GetFix() != tc.fix {
				t.Errorf("%s with %s: violation %v; want field %q, message %q, fix %q", what, tc.config, v, tc.field, tc.message, tc.fix)
			}
			if got := FormatViolation("runtimes[0].config", v); got != tc.formatted {
				t.Errorf("FormatViolation = %q, want %q", got, tc.formatted)
			}
			if ce.Plugin != spec.Name {
				t.Errorf("ConfigError names plugin %q, want %q", ce.Plugin, spec.Name)
			}
		}
	}
}

// startErr starts spec's runtime plugin and returns why it did not start;
// one that starts is stopped at once.
func startErr(h *Host, spec RuntimeSpec) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := h.StartRuntime(ctx, spec)
	if err == nil {
		cancel()
		<-r.Done()
	}
	return err
}
