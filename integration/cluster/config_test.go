package cluster

import (
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

func TestAgentConfigIsValidAndPinsThePlugin(t *testing.T) {
	dataDir, binDir := t.TempDir(), t.TempDir()
	for _, name := range []string{runtimePlugin, networkPlugin, kubernetesPlugin} {
		if err := os.WriteFile(filepath.Join(binDir, name), []byte("not really a plugin"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	paths := PathsFor(dataDir)
	p, err := ensurePKI(paths.PKI, clusterCerts("fedlet-node", net.ParseIP("192.0.2.7")))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := Options{DataDir: dataDir, BinDir: binDir}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{opts: opts, paths: paths, pki: p, hostIP: net.ParseIP("192.0.2.7")}
	cfg, err := c.agentConfig()
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAgentConfig(paths.AgentConfig, cfg); err != nil {
		t.Fatal(err)
	}

	// The agent's own loader accepts it.
	got, err := config.Load(paths.AgentConfig)
	if err != nil {
		t.Fatalf("the agent rejects the config: %v", err)
	}
	want := fmt.Sprintf("%x", sha256.Sum256([]byte("not really a plugin")))
	for _, name := range []string{runtimePlugin, networkPlugin, kubernetesPlugin} {
		if got.Plugins.Checksums[name] != "sha256:"+want {
			t.Errorf("checksum of %s = %q, want sha256:%s", name, got.Plugins.Checksums[name], want)
		}
	}
	if got.Kubeconfig != filepath.Join(dataDir, "pki", "agent.kubeconfig") ||
		got.NodeAPI.Address != "0.0.0.0:10250" ||
		got.NodeAPI.ClientCAFile != filepath.Join(dataDir, "pki", "ca.crt") ||
		got.NodeAPI.TLSCertFile != filepath.Join(dataDir, "pki", "node-api.crt") ||
		len(got.Plugins.Dirs) != 1 || got.Plugins.Dirs[0] != binDir {
		t.Errorf("config = %+v", got)
	}
	if len(got.Nodes) != 1 || got.Nodes[0].Name != "fedlet-node" || got.Nodes[0].Runtime != "containerd" || got.Nodes[0].Network != "cni" {
		t.Errorf("nodes = %+v", got.Nodes)
	}
	// Members added with `fedlet member add` have a runtime to serve them.
	if got.Members == nil || got.Members.Runtime != membersRuntime || got.Members.Namespace != config.DefaultMembersNamespace {
		t.Errorf("members = %+v, want served by runtime %s from %s", got.Members, membersRuntime, config.DefaultMembersNamespace)
	}
	var rt map[string]string
	if err := json.Unmarshal(got.Runtimes[0].Config, &rt); err != nil {
		t.Fatal(err)
	}
	wantRT := map[string]string{
		"address":     filepath.Join(dataDir, "containerd", "containerd.sock"),
		"namespace":   "fedlet",
		"stateDir":    filepath.Join(dataDir, "fedlet", "containerd"),
		"nodeAddress": "192.0.2.7",
	}
	for k, v := range wantRT {
		if rt[k] != v {
			t.Errorf("runtime config %s = %q, want %q", k, rt[k], v)
		}
	}
}

func TestContainerdConfigKeepsToItsDirectory(t *testing.T) {
	cfg := containerdConfig("/data/containerd")
	for _, want := range []string{
		`root = "/data/containerd/root"`,
		`state = "/data/containerd/state"`,
		`address = "/data/containerd/containerd.sock"`,
		`"io.containerd.grpc.v1.cri"`,
		`path = "/data/containerd/opt"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("containerd config lacks %s:\n%s", want, cfg)
		}
	}
}

func TestMakeTargetsBuildEachMissingComponentOnce(t *testing.T) {
	got := makeTargets("/b", []string{"kube-apiserver", "kubectl", "containerd", "containerd-shim-runc-v2", "kine", "fedlet-runtime-containerd"})
	want := []string{"controlplane", "/b/containerd", "/b/kine", "build"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("targets = %v, want %v", got, want)
	}
	if cmd := strings.Join(makeCommand("/src", "/b", want), " "); cmd != "make -C /src BIN=/b controlplane /b/containerd /b/kine build" {
		t.Errorf("command = %s", cmd)
	}
}

func TestRequiredComponentsFollowTheParts(t *testing.T) {
	opts := Options{Until: PartAPIServer, Datastore: DatastoreEtcd}
	if got := strings.Join(requiredComponents(opts), " "); got != "etcd kube-apiserver kubectl" {
		t.Errorf("up to the API server on etcd: %s", got)
	}
	opts = Options{Until: PartAgent, Datastore: DatastoreSQLite}
	got := requiredComponents(opts)
	for _, want := range []string{"kine", "kube-scheduler", "registry", "containerd-shim-runc-v2", "fedlet-runtime-containerd"} {
		if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+want+" ") {
			t.Errorf("everything: %v lacks %s", got, want)
		}
	}
}

func TestFindSourceRoot(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, ok := FindSourceRoot(t.TempDir(), wd)
	if !ok || root != filepath.Dir(filepath.Dir(wd)) {
		t.Errorf("FindSourceRoot = %q, %v; want the repository above %s", root, ok, wd)
	}
	if _, ok := FindSourceRoot(t.TempDir()); ok {
		t.Errorf("found a source root above a temporary directory")
	}
}

func TestParsePart(t *testing.T) {
	for _, name := range PartNames() {
		p, err := ParsePart(name)
		if err != nil || p.String() != name {
			t.Errorf("ParsePart(%q) = %v, %v", name, p, err)
		}
	}
	if _, err := ParsePart("kubelet"); err == nil {
		t.Errorf("ParsePart accepted kubelet")
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	if got := unescapeMountinfo(`/a\040b/c\134d`); got != `/a b/c\d` {
		t.Errorf("got %q", got)
	}
}
