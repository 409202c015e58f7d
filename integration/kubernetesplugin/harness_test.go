package kubernetesplugin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/fedlet/fedlet/integration/cluster"
	"github.com/fedlet/fedlet/plugins/pluginhost"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/testenv"
)

// The member cluster every test of the package shares, started on first
// use and stopped by TestMain: a whole cluster up to its agent (a
// containerd node), on its own pod network so that it never meets the
// machine's other clusters.
var shared struct {
	once    sync.Once
	cluster *cluster.Cluster
	dataDir string
	err     error

	buildOnce sync.Once
	pluginDir string
	buildErr  error
}

// memberPodNetwork is the member's pod network: not 10.244.0.0/16 on
// fedlet0 (a hub's) nor 10.(244+i).0.0/16 on fedlet<i> (fedlet up's members).
var memberPodNetwork = cluster.PodNetwork{CIDR: "10.240.0.0/16", Bridge: "fedletkt0"}

const memberNodeName = "member-node"

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := shared.cluster.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "stop the member cluster:", err)
			code = 1
		}
		cancel()
	}
	if shared.dataDir != "" {
		os.RemoveAll(shared.dataDir)
	}
	if shared.pluginDir != "" {
		os.RemoveAll(shared.pluginDir)
	}
	os.Exit(code)
}

// need fails the test when what it needs is missing (it skips if the
// developer opted out: testenv.SkipMissingEnv).
func need(t *testing.T, what string, ok bool) {
	t.Helper()
	testenv.Need(t, what, ok)
}

// binDir is the source tree's bin/, where `make build components` puts
// the control plane, containerd and fedlet.
func binDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("FEDLET_BIN_DIR"); dir != "" {
		return dir
	}
	wd, _ := os.Getwd()
	root, ok := cluster.FindSourceRoot(wd)
	if !ok {
		t.Fatalf("no fedlet source tree above %s", wd)
	}
	return filepath.Join(root, "bin")
}

// memberCluster starts the shared member cluster, once.
func memberCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	need(t, "root (containerd, runc, network namespaces)", os.Geteuid() == 0)
	bin := binDir(t)
	var missing []string
	for _, c := range []string{"kine", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "registry",
		"containerd", "containerd-shim-runc-v2", "fedlet", "fedlet-runtime-containerd", "fedlet-network-cni", "cni/bridge"} {
		if _, err := os.Stat(filepath.Join(bin, c)); err != nil {
			missing = append(missing, c)
		}
	}
	need(t, strings.Join(missing, ", ")+" in "+bin+" (make build components)", len(missing) == 0)
	shared.once.Do(func() {
		shared.dataDir, shared.err = os.MkdirTemp("", "fedlet-kubernetes-plugin-")
		if shared.err != nil {
			return
		}
		ports, err := cluster.FreePorts()
		if err != nil {
			shared.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		shared.cluster, shared.err = cluster.Start(ctx, cluster.Options{
			DataDir:    shared.dataDir,
			BinDir:     bin,
			Ports:      ports,
			Until:      cluster.PartAgent,
			NodeName:   memberNodeName,
			PodNetwork: memberPodNetwork,
			Progress:   os.Stderr,
		})
	})
	if shared.err != nil {
		t.Fatalf("start the member cluster: %v", shared.err)
	}
	return shared.cluster
}

// pluginDir builds the plugin from this tree into a directory of its own,
// once; with FEDLET_PLUGIN_RACE set, under the race detector.
func pluginDir(t *testing.T) string {
	t.Helper()
	shared.buildOnce.Do(func() {
		shared.pluginDir, shared.buildErr = os.MkdirTemp("", "fedlet-kubernetes-plugin-bin-")
		if shared.buildErr != nil {
			return
		}
		args := []string{"build", "-o", filepath.Join(shared.pluginDir, pluginName)}
		if os.Getenv("FEDLET_PLUGIN_RACE") != "" {
			args = append(args, "-race") // the plugin under the race detector
		}
		out, err := exec.Command("go", append(args, "github.com/fedlet/fedlet/cmd/fedlet-runtime-kubernetes")...).CombinedOutput()
		if err != nil {
			shared.buildErr = fmt.Errorf("build the plugin: %v\n%s", err, out)
		}
	})
	if shared.buildErr != nil {
		t.Fatal(shared.buildErr)
	}
	return shared.pluginDir
}

const pluginName = "fedlet-runtime-kubernetes"

// plugin is the plugin process, launched and supervised by the agent's own
// plugin host.
type plugin struct {
	rt     *pluginhost.Runtime
	client runtimev1.RuntimeClient
	path   string
}

// startPlugin launches the plugin for nodes with config; it is stopped when
// the test ends.
func startPlugin(t *testing.T, config []byte, nodes ...string) *plugin {
	t.Helper()
	dir := pluginDir(t)
	logs := &lockedBuffer{}
	t.Cleanup(func() { // runs last, once the plugin has stopped
		if strings.Contains(logs.String(), "DATA RACE") {
			t.Error("the race detector found a data race in the plugin")
		}
		if t.Failed() {
			t.Logf("plugin host and plugin log:\n%s", logs.String())
		}
	})
	host, err := pluginhost.New(pluginhost.Config{Dirs: []string{dir}}, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt, err := host.StartRuntime(ctx, pluginhost.RuntimeSpec{Name: "members", Plugin: pluginName, Config: config, Nodes: nodes})
	if err != nil {
		cancel()
		t.Fatalf("start the plugin: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-rt.Done():
		case <-time.After(30 * time.Second):
			t.Error("the plugin host did not stop the plugin")
		}
	})
	return &plugin{rt: rt, client: rt.Client(), path: filepath.Join(dir, pluginName)}
}

// kill kills the plugin process with SIGKILL and waits until the host has
// started and configured a new one.
func (p *plugin) kill(t *testing.T) {
	t.Helper()
	events, cancel := p.rt.Subscribe()
	defer cancel()
	<-events // the current state
	pids := childrenRunning(p.path)
	if len(pids) != 1 {
		t.Fatalf("plugin processes %v, want one", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(time.Minute)
	for {
		select {
		case ev := <-events:
			if ev.Kind == pluginhost.Started {
				return
			}
		case <-timeout:
			t.Fatal("the plugin was not restarted within a minute")
		}
	}
}

// childrenRunning lists the children of this process that run path.
func childrenRunning(path string) []int {
	entries, _ := os.ReadDir("/proc")
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(stat), ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == path {
			found = append(found, pid)
		}
	}
	return found
}

// writeKubeconfig writes a copy of the kubeconfig at from, changed by edit,
// into dir and returns its path.
func writeKubeconfig(t *testing.T, from, dir, name string, edit func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(from)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	edit(cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo])
	path := filepath.Join(dir, name)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// selfSignedCA is the PEM of a CA that signed nothing the member has.
func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "not the member's CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
