package plugin_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedlet/fedlet/plugins/pluginhost"
	"github.com/fedlet/fedlet/plugins/sdk/testenv"
)

// pluginDir holds fedlet-network-cni, built once by TestMain from this tree.
var pluginDir string

const pluginBinary = "fedlet-network-cni"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cni-plugin-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	pluginDir = dir
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, pluginBinary), "github.com/fedlet/fedlet/cmd/fedlet-network-cni").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pluginBinary, err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// missing fails the test, or skips it if the developer opted out
// (testenv.SkipMissingEnv).
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	testenv.Missing(t, format, args...)
}

// requireNetAdmin checks what the tests that build real networks need: root,
// iproute2, iptables, nft (the default conflist masquerades with nftables)
// and busybox (for ping inside a namespace).
func requireNetAdmin(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root to create network namespaces and bridges")
	}
	for _, tool := range []string{"ip", "iptables", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, "needs %s: %v", tool, err)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		missing(t, "needs busybox-static (/bin/busybox) for ping: %v", err)
	}
}

// The standard CNI plugins the tests run, as the Makefile's cni-plugins
// target builds them.
const cniPluginsVersion = "v1.9.1"

var cniPlugins = []string{"main/bridge", "ipam/host-local", "main/loopback", "meta/portmap"}

var (
	cniOnce sync.Once
	cniDir  string
	cniErr  error
)

// cniBinDir returns bin/cni of this source tree, installing the standard
// CNI plugins there first when one is missing (what `make cni-plugins`
// does).
func cniBinDir(t *testing.T) string {
	t.Helper()
	cniOnce.Do(func() {
		root, err := sourceRoot()
		if err != nil {
			cniErr = err
			return
		}
		cniDir = filepath.Join(root, "bin", "cni")
		var pkgs []string
		for _, p := range cniPlugins {
			if _, err := os.Stat(filepath.Join(cniDir, filepath.Base(p))); err != nil {
				pkgs = append(pkgs, "github.com/containernetworking/plugins/plugins/"+p+"@"+cniPluginsVersion)
			}
		}
		if len(pkgs) == 0 {
			return
		}
		cmd := exec.Command("go", append([]string{"install"}, pkgs...)...)
		cmd.Env = append(os.Environ(), "GOBIN="+cniDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			cniErr = fmt.Errorf("install the CNI plugins into %s: %v\n%s", cniDir, err, out)
		}
	})
	if cniErr != nil {
		t.Fatal(cniErr)
	}
	return cniDir
}

// sourceRoot is the directory of fedlet's go.mod above the test's working
// directory (the package's), as an absolute path.
func sourceRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if strings.TrimSpace(sc.Text()) == "module github.com/fedlet/fedlet" {
					f.Close()
					return dir, nil
				}
			}
			f.Close()
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no fedlet go.mod above %s", wd)
		}
	}
}

// pluginConfig is the network plugin's config for a test.
type pluginConfig struct {
	ConflistFile string          `json:"conflistFile,omitempty"`
	Conflist     json.RawMessage `json:"conflist,omitempty"`
	BinDirs      []string        `json:"binDirs,omitempty"`
	CacheDir     string          `json:"cacheDir"`
}

const testNode = "node-a"

// startPlugin launches fedlet-network-cni through the agent's plugin host
// (go-plugin, AutoMTLS) for testNode, and stops it when the test ends.
func startPlugin(t *testing.T, cfg pluginConfig) *pluginhost.Network {
	t.Helper()
	n, err := tryStartPlugin(t, cfg)
	if err != nil {
		t.Fatalf("start the network plugin: %v", err)
	}
	return n
}

func tryStartPlugin(t *testing.T, cfg pluginConfig) (*pluginhost.Network, error) {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin host and plugin log:\n%s", logs.String())
		}
	})
	host, err := pluginhost.New(pluginhost.Config{Dirs: []string{pluginDir}},
		slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := host.StartNetwork(ctx, pluginhost.NetworkSpec{Name: "cni", Plugin: pluginBinary, Config: raw, Nodes: []string{testNode}})
	if err != nil {
		cancel()
		return nil, err
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-n.Done():
		case <-time.After(time.Minute):
			t.Error("the network plugin did not stop within a minute")
		}
	})
	return n, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// randomName returns prefix followed by 8 random hex digits.
func randomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
