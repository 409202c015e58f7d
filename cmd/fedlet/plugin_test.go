package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedlet/fedlet/plugins/sdk/testenv"
)

// conform runs `fedlet plugin conform` with args and returns its output and
// error.
func conform(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newPluginCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"conform"}, args...))
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

// The command runs the kit against a plugin binary: the in-memory plugin
// of the plugin host's tests, which does sandboxes and nothing else. What
// it does passes, what it lacks fails with the rule and why, and the
// command's error says how many failed.
func TestPluginConform(t *testing.T) {
	plugin := filepath.Join(t.TempDir(), "testplugin")
	if out, err := exec.Command("go", "build", "-o", plugin, "../../plugins/pluginhost/testdata/testplugin").CombinedOutput(); err != nil {
		t.Fatalf("build the test plugin: %v\n%s", err, out)
	}

	out, err := conform(t, plugin, "--run", "^(handshake|describe|sandbox-listed)$", "--rules")
	if err != nil {
		t.Errorf("passing checks: %v\n%s", err, out)
	}
	for _, want := range []string{"SUITE containers:", "PASS  handshake", "PASS  sandbox-listed", "rule: ", "3 passed, 0 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, err = conform(t, plugin, "--run", "^(describe|container-exit-completed)$", "--image", "registry.invalid/none:1", "--timeout", "10s")
	if err == nil || err.Error() != "1 of 2 conformance checks failed" {
		t.Errorf("a failing check: error %v, want 1 of 2 failed\n%s", err, out)
	}
	for _, want := range []string{"FAIL  container-exit-completed", "why:  ", "1 passed, 1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	if _, err := conform(t, plugin, "--run", "^no-such-check$"); err == nil || !strings.Contains(err.Error(), "no check matches") {
		t.Errorf("--run matching nothing: %v", err)
	}
	if _, err := conform(t, plugin, "--run", "^handshake$", "--checksum", "sha256:"+strings.Repeat("0", 64)); err == nil {
		t.Error("a binary that does not match its pin passed")
	}
	if _, err := conform(t, plugin, "--plugin-log", "loud"); err == nil || !strings.Contains(err.Error(), "expected debug, info, warn or error") {
		t.Errorf("a bad --plugin-log: %v", err)
	}
}

// With --csi the command runs csi-sanity against a CSI driver binary it
// starts on a socket of its own: the shipped driver passes; a binary that
// never serves an endpoint fails, saying so.
func TestPluginConformCSI(t *testing.T) {
	testenv.Need(t, "root, for the CSI driver's loop devices and mounts", os.Geteuid() == 0)
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin+"/", "../fedlet-csi-local", "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity").CombinedOutput(); err != nil {
		t.Fatalf("build the driver and csi-sanity: %v\n%s", err, out)
	}
	sanity := filepath.Join(bin, "csi-sanity")
	state := t.TempDir()

	out, err := conform(t, "--csi", filepath.Join(bin, "fedlet-csi-local"), "--csi-sanity", sanity,
		"--driver-arg=--state-dir="+state, "--driver-arg=--node-id=conform-node")
	if err != nil {
		t.Fatalf("conform --csi fedlet-csi-local: %v\n%s", err, out)
	}
	for _, want := range []string{"SUCCESS!", "0 Failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("csi-sanity's report lacks %q:\n%s", want, out)
		}
	}

	out, err = conform(t, "--csi", "/bin/true", "--csi-sanity", sanity)
	if err == nil || !strings.Contains(err.Error(), "exited before serving its endpoint") {
		t.Errorf("conform --csi of a binary that serves nothing: %v\n%s", err, out)
	}
}
