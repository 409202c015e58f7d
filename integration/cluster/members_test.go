package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedlet/fedlet/core/config"
)

func TestHubAgentConfigServesOneVirtualNodePerMember(t *testing.T) {
	dataDir, binDir := t.TempDir(), t.TempDir()
	for _, name := range []string{runtimePlugin, networkPlugin, kubernetesPlugin} {
		if err := os.WriteFile(filepath.Join(binDir, name), []byte("plugin "+name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	paths := PathsFor(dataDir)
	p, err := ensurePKI(paths.PKI, clusterCerts("fedlet-node", net.ParseIP("192.0.2.7")))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := Options{DataDir: dataDir, BinDir: binDir, Members: 2}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	hub := &Cluster{opts: opts, paths: paths, pki: p, hostIP: net.ParseIP("192.0.2.7"), name: HubName}
	for i := 1; i <= 2; i++ {
		name := MemberName(i)
		hub.members = append(hub.members, &Cluster{name: name, paths: PathsFor(filepath.Join(paths.Members, name))})
	}
	cfg, err := hub.agentConfig()
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAgentConfig(paths.AgentConfig, cfg); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(paths.AgentConfig)
	if err != nil {
		t.Fatalf("the agent rejects the config: %v", err)
	}

	if want := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("plugin "+kubernetesPlugin))); got.Plugins.Checksums[kubernetesPlugin] != want {
		t.Errorf("%s pinned as %q, want %s", kubernetesPlugin, got.Plugins.Checksums[kubernetesPlugin], want)
	}
	if len(got.Runtimes) != 2 || got.Runtimes[1].Name != "members" || got.Runtimes[1].Plugin != kubernetesPlugin {
		t.Fatalf("runtimes = %+v", got.Runtimes)
	}
	var rc map[string]any
	if err := json.Unmarshal(got.Runtimes[1].Config, &rc); err != nil {
		t.Fatal(err)
	}
	wantRC := map[string]any{"origin": "hub", "members": []any{
		map[string]any{"node": "member-1", "kubeconfig": filepath.Join(dataDir, "members", "member-1", "kubeconfig"), "namespace": ""},
		map[string]any{"node": "member-2", "kubeconfig": filepath.Join(dataDir, "members", "member-2", "kubeconfig"), "namespace": ""},
	},
		// The plugin reads the hub's Services with the agent's credentials,
		// and points federated pods at the hub's kubernetes Service.
		"hub": map[string]any{"kubeconfig": filepath.Join(dataDir, "pki", "agent.kubeconfig"), "apiServer": "10.0.0.1:443"},
	}
	if a, b := mustJSON(t, rc), mustJSON(t, wantRC); a != b {
		t.Errorf("plugin config = %s\nwant %s", a, b)
	}

	if len(got.Nodes) != 3 || got.Nodes[0].Name != "fedlet-node" {
		t.Fatalf("nodes = %+v", got.Nodes)
	}
	for i, n := range got.Nodes[1:] {
		name := MemberName(i + 1)
		if n.Name != name || n.Runtime != "members" || n.Network != "" || n.Labels[MemberLabel] != name || len(n.Labels) != 1 {
			t.Errorf("virtual node %d = %+v", i+1, n)
		}
		if len(n.Taints) != 1 || n.Taints[0] != (config.Taint{Key: "virtual-kubelet.io/provider", Value: "fedlet", Effect: "NoSchedule"}) {
			t.Errorf("virtual node %s taints = %+v", name, n.Taints)
		}
	}
}

func TestPodNetworksOfMembersStayApart(t *testing.T) {
	hub, err := PodNetwork{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if hub != (PodNetwork{CIDR: "10.244.0.0/16", Bridge: "fedlet0", Name: "fedlet"}) {
		t.Errorf("default pod network = %+v", hub)
	}
	names, bridges := map[string]bool{hub.Name: true}, map[string]bool{hub.Bridge: true}
	_, hubNet, _ := net.ParseCIDR(hub.CIDR)
	for i := 1; i <= 3; i++ {
		n, err := memberPodNetwork(i).withDefaults()
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		if want := fmt.Sprintf("10.%d.0.0/16", 244+i); n.CIDR != want || n.Bridge != fmt.Sprintf("fedlet%d", i) {
			t.Errorf("member %d network = %+v", i, n)
		}
		_, mNet, _ := net.ParseCIDR(n.CIDR)
		if hubNet.Contains(mNet.IP) || mNet.Contains(hubNet.IP) {
			t.Errorf("member %d's %s overlaps the hub's %s", i, n.CIDR, hub.CIDR)
		}
		// The CNI plugins' GC removes the rules of a network by its name;
		// a cluster's teardown removes its bridge.
		if names[n.Name] || bridges[n.Bridge] {
			t.Errorf("member %d's network %+v shares a name or bridge with another cluster's", i, n)
		}
		names[n.Name], bridges[n.Bridge] = true, true
	}
	for _, bad := range []PodNetwork{{CIDR: "10.244.0.0"}, {CIDR: "10.244.0.1/16"}, {CIDR: "fd00::/64"}, {CIDR: "10.0.0.0/25"}, {Bridge: "a-bridge-name-too-long"}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestConflistCarriesTheNetworkName(t *testing.T) {
	dataDir := t.TempDir()
	opts, err := Options{DataDir: dataDir, BinDir: t.TempDir(), PodNetwork: memberPodNetwork(2)}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{opts: opts, paths: PathsFor(dataDir)}
	if err := c.writeConflist(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(c.cniConflist())
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Name    string           `json:"name"`
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	if list.Name != "fedlet2" || len(list.Plugins) == 0 || list.Plugins[0]["bridge"] != "fedlet2" {
		t.Errorf("conflist:\n%s", data)
	}
	if cfg := c.networkPluginConfig(); cfg.SharedSubnet != "10.246.0.0/16" {
		t.Errorf("sharedSubnet = %s", cfg.SharedSubnet)
	}
}

func TestMembersNeedTheAgentAndThePlugin(t *testing.T) {
	if _, err := (Options{DataDir: "d", BinDir: "b", Members: 1, Until: PartContainerd}).withDefaults(); err == nil {
		t.Errorf("members accepted without the agent")
	}
	// Every agent serves the members added with `fedlet member add`, and
	// networks its pods: a cluster alone needs the plugins a hub needs.
	for _, opts := range []Options{{Until: PartAgent, Members: 1}, {Until: PartAgent}} {
		got := " " + strings.Join(requiredComponents(opts), " ") + " "
		for _, want := range []string{kubernetesPlugin, networkPlugin, "cni/bridge", "cni/host-local", "cni/loopback", "cni/portmap"} {
			if !strings.Contains(got, " "+want+" ") {
				t.Errorf("with %d members, %s is not required: %s", opts.Members, want, got)
			}
		}
	}
}

// Outgoing connections take their local ports from the ephemeral range: a
// cluster's ports lie below it, so a restart finds them free.
func TestFreePortsAreBelowTheEphemeralRange(t *testing.T) {
	p, err := FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	_, high := freePortRange()
	seen := map[int]bool{}
	for _, port := range p.list() {
		if port < 10000 || port >= high || seen[port] {
			t.Errorf("port %d: not in 10000–%d, or given twice (%v)", port, high, p.list())
		}
		seen[port] = true
	}
}

func TestFreePortsBesidesAvoidsTakenPorts(t *testing.T) {
	first, err := FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	taken := map[int]bool{}
	for _, p := range first.list() {
		taken[p] = true
	}
	for range 5 {
		p, err := freePortsBesides(taken)
		if err != nil {
			t.Fatal(err)
		}
		for _, port := range p.list() {
			if taken[port] {
				t.Fatalf("port %d given twice", port)
			}
			taken[port] = true
		}
	}
}

func TestPrefixWriterPrefixesEveryLine(t *testing.T) {
	var out bytes.Buffer
	w := &prefixWriter{w: &out, prefix: "member-1: "}
	for _, s := range []string{"one\n", "two ", "halves\nthree\n", "\n"} {
		if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if want := "member-1: one\nmember-1: two halves\nmember-1: three\nmember-1: \n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
