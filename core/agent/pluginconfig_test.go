package agent

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedlet/fedlet/core/config"
)

// A plugin that refuses its config through the base protocol's
// ValidateConfig stops the agent before it registers any node, with the
// field as the agent's config file spells it and the fix; a plugin whose
// config is fine, or that cannot be checked, does not.
func TestRunStopsOnAPluginConfigViolation(t *testing.T) {
	dir := t.TempDir()
	const plugin = "fedlet-testplugin"
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, plugin), "github.com/fedlet/fedlet/plugins/pluginhost/testdata/testplugin").CombinedOutput()
	if err != nil {
		t.Fatalf("build the test plugin: %v\n%s", err, out)
	}
	// Run makes its client before the check; nothing is asked of the API
	// server until nodes are registered, so none needs to answer.
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {token: x}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Agent{
		Kubeconfig: kubeconfig,
		NodeAPI:    config.NodeAPI{Address: "127.0.0.1:0"},
		Plugins:    config.Plugins{Dirs: []string{dir}},
		Runtimes: []config.Runtime{
			{Name: "fine", Plugin: plugin, Config: []byte(`{"greeting": "hello"}`)},
			{Name: "wrong", Plugin: plugin, Config: []byte(`{"invalid": "names no check"}`)},
			{Name: "missing", Plugin: "fedlet-no-such-plugin"},
		},
		Networks: []config.Network{{Name: "typo", Plugin: "fedlet-no-such-network"}},
		Nodes: []config.Node{
			{Name: "a", Runtime: "fine"},
			{Name: "b", Runtime: "wrong", Network: "typo"},
			{Name: "c", Runtime: "missing"},
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = Run(ctx, cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("Run with a plugin config the plugin refuses returned nil")
	}
	want := "plugin wrong refuses its config: runtimes[1].config.checks[1].name: names no check (fix: leave invalid out)"
	if err.Error() != want {
		t.Errorf("Run = %q\nwant %q", err, want)
	}
	for _, notWant := range []string{"runtimes[0]", "runtimes[2]", "networks[0]"} {
		if strings.Contains(err.Error(), notWant) {
			t.Errorf("Run's error names %s, whose config is fine or could not be checked: %v", notWant, err)
		}
	}
}
