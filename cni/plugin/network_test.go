package plugin_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedlet/fedlet/cni/plugin"
	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

// testNetwork is a bridge network of the test's own: DefaultConflist with a
// bridge name and a /24 of 10.250.0.0/16 that nothing on the host routes.
type testNetwork struct {
	bridge   string
	subnet   netip.Prefix
	dataDir  string // host-local's
	cacheDir string // the plugin's
	conflist string
	bin      string
}

func newTestNetwork(t *testing.T) *testNetwork {
	t.Helper()
	requireNetAdmin(t)
	dir := t.TempDir()
	n := &testNetwork{
		bridge:   randomName("fdt"),
		dataDir:  filepath.Join(dir, "ipam"),
		cacheDir: filepath.Join(dir, "cache"),
		conflist: filepath.Join(dir, "fedlet.conflist"),
		bin:      cniBinDir(t),
	}
	for {
		n.subnet = netip.MustParsePrefix(fmt.Sprintf("10.250.%d.0/24", rand.IntN(256)))
		out, err := exec.Command("ip", "route", "show", "match", n.subnet.Addr().Next().String()).Output()
		if err != nil {
			t.Fatalf("ip route: %v", err)
		}
		if !strings.Contains(string(out), "10.250.") {
			break
		}
	}
	if err := os.WriteFile(n.conflist, plugin.DefaultConflist(n.bridge, n.dataDir), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if linkExists(n.bridge) {
			run(t, "ip", "link", "del", n.bridge)
		}
	})
	return n
}

func (n *testNetwork) config() pluginConfig {
	return pluginConfig{ConflistFile: n.conflist, BinDirs: []string{n.bin}, CacheDir: n.cacheDir}
}

// ipFiles lists the addresses host-local has reserved in the network.
func (n *testNetwork) ipFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(n.dataDir, plugin.DefaultNetworkName))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ips []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// bridgePorts lists the interfaces enslaved to the bridge.
func (n *testNetwork) bridgePorts(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("/sys/class/net", n.bridge, "brif"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ports []string
	for _, e := range entries {
		ports = append(ports, e.Name())
	}
	return ports
}

// newNetns creates a network namespace, as a runtime's sandbox would, and
// returns its path; it is deleted when the test ends.
func newNetns(t *testing.T) string {
	t.Helper()
	name := randomName("fdt-ns-")
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { run(t, "ip", "netns", "del", name) })
	return "/run/netns/" + name
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNetns runs a command inside the namespace at path.
func inNetns(netns string, args ...string) ([]byte, error) {
	return exec.Command("ip", append([]string{"netns", "exec", filepath.Base(netns)}, args...)...).CombinedOutput()
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// natRulesOf returns the NAT rules that mention a container ID in their
// comments: portmap's (iptables) and bridge's masquerade rule (nftables).
func natRulesOf(t *testing.T, containerID string) []string {
	t.Helper()
	rules := run(t, "iptables-save", "-t", "nat")
	// The table exists once a pod was masqueraded.
	if out, err := exec.Command("nft", "list", "table", "inet", "cni_plugins_masquerade").CombinedOutput(); err == nil {
		rules += string(out)
	}
	var lines []string
	for _, line := range strings.Split(rules, "\n") {
		if strings.Contains(line, containerID) {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	return lines
}

// podIP returns the address of the result's interface in netns.
func podIP(t *testing.T, res *networkv1.Result, netns string) (netip.Prefix, string) {
	t.Helper()
	for _, ip := range res.GetIps() {
		if ip.Interface == nil || int(ip.GetInterface()) >= len(res.GetInterfaces()) {
			continue
		}
		if res.GetInterfaces()[ip.GetInterface()].GetSandbox() == netns {
			p, err := netip.ParsePrefix(ip.GetAddress())
			if err != nil {
				t.Fatalf("result address %q: %v", ip.GetAddress(), err)
			}
			return p, ip.GetGateway()
		}
	}
	t.Fatalf("result has no address on an interface in %s: %v", netns, res)
	return netip.Prefix{}, ""
}

// hostVeth returns the name of the result's host-side interface that is
// not the bridge.
func hostVeth(t *testing.T, res *networkv1.Result, bridge string) string {
	t.Helper()
	for _, i := range res.GetInterfaces() {
		if i.GetSandbox() == "" && i.GetName() != bridge {
			return i.GetName()
		}
	}
	t.Fatalf("result has no host-side veth: %v", res)
	return ""
}
