package plugin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

func TestParseConfig(t *testing.T) {
	cfg, err := parseConfig([]byte(`{"conflistFile": "/etc/fedlet/net.conflist", "cacheDir": "/var/lib/fedlet/cni"}`))
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if want := filepath.Join(filepath.Dir(exe), "cni"); !slices.Equal(cfg.BinDirs, []string{want}) {
		t.Errorf("default binDirs = %v, want [%s]", cfg.BinDirs, want)
	}

	for raw, want := range map[string]string{
		``: "empty",
		`{"conflistFile": "/a", "cacheDirectory": "/b"}`:                        `unknown field "cacheDirectory"`,
		`{"conflistFile": "a.conflist", "cacheDir": "/b"}`:                      "absolute",
		`{"conflistFile": "/a", "conflist": {}, "cacheDir": "/b"}`:              "exactly one",
		`{"conflistFile": "/a", "cacheDir": "/var/lib/cni/"}`:                   "libcni's shared default",
		`{"conflistFile": "/a", "cacheDir": "/b", "binDirs": ["bin/cni"]}`:      "not an absolute path",
		`{"conflistFile": "/a", "cacheDir": "relative", "binDirs": ["/opt/x"]}`: "cacheDir",
	} {
		if _, err := parseConfig([]byte(raw)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseConfig(%s) = %v; want an error saying %q", raw, err, want)
		}
	}
}

func TestDefaultConflist(t *testing.T) {
	raw := DefaultConflist("fedlet0", "/var/lib/fedlet/ipam")
	list, err := parseConflist(raw)
	if err != nil {
		t.Fatalf("the default conflist does not parse: %v\n%s", err, raw)
	}
	if list.Name != DefaultNetworkName || list.CNIVersion != "1.1.0" {
		t.Errorf("name %q version %q, want %q 1.1.0", list.Name, list.CNIVersion, DefaultNetworkName)
	}
	if got := binaries(list); !slices.Equal(got, []string{"bridge", "host-local", "portmap"}) {
		t.Errorf("binaries = %v", got)
	}
	if !hasCapability(list, "ipRanges") || !hasCapability(list, "portMappings") {
		t.Errorf("the default conflist lacks ipRanges or portMappings:\n%s", raw)
	}
	var bridge struct {
		Bridge      string `json:"bridge"`
		IsGateway   bool   `json:"isGateway"`
		IPMasq      bool   `json:"ipMasq"`
		HairpinMode bool   `json:"hairpinMode"`
		IPAM        struct {
			Type    string `json:"type"`
			DataDir string `json:"dataDir"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &bridge); err != nil {
		t.Fatal(err)
	}
	if bridge.Bridge != "fedlet0" || !bridge.IsGateway || !bridge.IPMasq || !bridge.HairpinMode ||
		bridge.IPAM.Type != "host-local" || bridge.IPAM.DataDir != "/var/lib/fedlet/ipam" {
		t.Errorf("bridge plugin = %+v", bridge)
	}
}

func TestInSharedSubnet(t *testing.T) {
	cases := []struct {
		in   *networkv1.IPRange
		want *networkv1.IPRange
	}{
		{&networkv1.IPRange{Subnet: "10.244.2.0/24"}, &networkv1.IPRange{Subnet: "10.244.0.0/16", RangeStart: "10.244.2.1", RangeEnd: "10.244.2.254", Gateway: "10.244.0.1"}},
		{&networkv1.IPRange{Subnet: "10.244.0.0/24"}, &networkv1.IPRange{Subnet: "10.244.0.0/16", RangeStart: "10.244.0.1", RangeEnd: "10.244.0.254", Gateway: "10.244.0.1"}},
		// Outside the shared subnet: as it was.
		{&networkv1.IPRange{Subnet: "192.168.5.0/24"}, &networkv1.IPRange{Subnet: "192.168.5.0/24"}},
	}
	for _, tc := range cases {
		if got := inSharedSubnet(tc.in, "10.244.0.0/16"); !proto.Equal(got, tc.want) {
			t.Errorf("inSharedSubnet(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
