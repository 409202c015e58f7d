package plugin_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedlet/fedlet/cni/plugin"
	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

func statusOf(t *testing.T, client networkv1.NetworkClient) *networkv1.StatusResponse {
	t.Helper()
	st, err := client.Status(t.Context(), &networkv1.StatusRequest{Node: testNode})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

// addRequest asks for an attachment of eth0 in netns, for the pod uid.
func addRequest(uid, netns, subnet string) *networkv1.AddRequest {
	return &networkv1.AddRequest{
		Node:       testNode,
		Attachment: &networkv1.Attachment{ContainerId: uid, Ifname: "eth0"},
		NetnsPath:  netns,
		Pod:        &networkv1.PodRef{Uid: uid, Namespace: "default", Name: "pod-" + uid},
		IpRanges:   []*networkv1.IPRangeSet{{Ranges: []*networkv1.IPRange{{Subnet: subnet}}}},
	}
}

func writeExecutable(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestNotReadyNamesWhatIsMissing walks a node from no conflist to a conflist
// whose binaries are missing, one by one: Status says which file or binary
// and how to fix it, and Add refuses with FailedPrecondition saying the
// same. The conflist is read at every call, so no restart is needed.
func TestNotReadyNamesWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	conflist := filepath.Join(dir, "net.conflist")
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	n := startPlugin(t, pluginConfig{ConflistFile: conflist, BinDirs: []string{bin}, CacheDir: filepath.Join(dir, "cache")})
	client := n.Client()
	// Add looks at the configuration after checking that the namespace
	// exists; any existing path does for a network that is not ready.
	add := addRequest("uid-1", dir, "10.250.0.0/24")

	st := statusOf(t, client)
	if st.GetReady() || st.GetReason() != plugin.ReasonConfigMissing || !strings.Contains(st.GetMessage(), conflist) {
		t.Errorf("Status without a conflist = %v; want not ready, %s, naming %s", st, plugin.ReasonConfigMissing, conflist)
	}
	_, err := client.Add(t.Context(), add)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), conflist) {
		t.Errorf("Add without a conflist: %v; want FailedPrecondition naming %s", err, conflist)
	}

	if err := os.WriteFile(conflist, plugin.DefaultConflist("fdt0", filepath.Join(dir, "ipam")), 0o644); err != nil {
		t.Fatal(err)
	}
	st = statusOf(t, client)
	if st.GetReady() || st.GetReason() != plugin.ReasonPluginMissing || !strings.Contains(st.GetMessage(), `"bridge"`) || !strings.Contains(st.GetMessage(), bin) {
		t.Errorf("Status with no binaries = %v; want not ready, %s, naming bridge and %s", st, plugin.ReasonPluginMissing, bin)
	}

	writeExecutable(t, filepath.Join(bin, "bridge"))
	writeExecutable(t, filepath.Join(bin, "host-local"))
	st = statusOf(t, client)
	if st.GetReady() || st.GetReason() != plugin.ReasonPluginMissing || !strings.Contains(st.GetMessage(), `"portmap"`) {
		t.Errorf("Status without portmap = %v; want not ready, %s, naming portmap", st, plugin.ReasonPluginMissing)
	}
	if !strings.Contains(st.GetMessage(), "make cni-plugins") {
		t.Errorf("Status message %q does not say how to get the binaries", st.GetMessage())
	}
	_, err = client.Add(t.Context(), add)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), `"portmap"`) {
		t.Errorf("Add without portmap: %v; want FailedPrecondition naming portmap", err)
	}
	// Nothing was run, so nothing was recorded.
	if entries, _ := os.ReadDir(filepath.Join(dir, "cache", testNode, "attachments")); len(entries) != 0 {
		t.Errorf("a refused Add left %d attachment records", len(entries))
	}
}

func TestMalformedConflistIsNotReady(t *testing.T) {
	dir := t.TempDir()
	conflist := filepath.Join(dir, "net.conflist")
	if err := os.WriteFile(conflist, []byte(`{"cniVersion": "1.1.0", "name": "x", "plugins": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startPlugin(t, pluginConfig{ConflistFile: conflist, BinDirs: []string{dir}, CacheDir: filepath.Join(dir, "cache")})
	st := statusOf(t, n.Client())
	if st.GetReady() || st.GetReason() != plugin.ReasonConfigInvalid || !strings.Contains(st.GetMessage(), conflist) {
		t.Errorf("Status with a malformed conflist = %v; want not ready, %s, naming %s", st, plugin.ReasonConfigInvalid, conflist)
	}

	if err := os.WriteFile(conflist, []byte(`{"cniVersion": "1.1.0", "name": "x", "plugins": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, n.Client()); st.GetReady() || st.GetReason() != plugin.ReasonConfigInvalid || !strings.Contains(st.GetMessage(), "no plugins") {
		t.Errorf("Status with an empty plugin list = %v; want not ready, %s, saying no plugins", st, plugin.ReasonConfigInvalid)
	}
}

// TestConfigureRefusesBadConfig: the plugin's own config is checked at
// Configure, so a typo stops the plugin's start with a message naming it.
func TestConfigureRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  pluginConfig
		want string
	}{
		{"no cache dir", pluginConfig{ConflistFile: "/x.conflist"}, "cacheDir"},
		{"libcni's cache dir", pluginConfig{ConflistFile: "/x.conflist", CacheDir: "/var/lib/cni"}, "libcni's shared default"},
		{"no conflist", pluginConfig{CacheDir: dir}, "exactly one of conflistFile"},
		{"malformed inline conflist", pluginConfig{Conflist: []byte(`{"name": "x"}`), CacheDir: dir}, "conflist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tryStartPlugin(t, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("start with %+v: %v; want an error saying %q", tc.cfg, err, tc.want)
			}
		})
	}
}
