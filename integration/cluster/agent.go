package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	cniplugin "github.com/fedlet/fedlet/cni/plugin"
	"github.com/fedlet/fedlet/core/config"
)

// The plugins' binaries in the bin directory.
const (
	runtimePlugin = "fedlet-runtime-containerd"
	networkPlugin = "fedlet-network-cni"
)

// containerdRuntimeConfig is the part of the containerd plugin's config
// that fedlet up sets; the plugin defaults the rest.
type containerdRuntimeConfig struct {
	Address     string `json:"address"`
	Namespace   string `json:"namespace"`
	StateDir    string `json:"stateDir"`
	NodeAddress string `json:"nodeAddress"`
}

// agentConfig is the agent's config for one containerd node on this
// machine, its runtime plugin pinned to the binary's current SHA-256.
func (c *Cluster) agentConfig() (*config.Agent, error) {
	plugins := []string{runtimePlugin, networkPlugin, kubernetesPlugin}
	sums := map[string]string{}
	for _, p := range plugins {
		sum, err := fileSHA256(filepath.Join(c.opts.BinDir, p))
		if err != nil {
			return nil, fmt.Errorf("pin %s: %w", p, err)
		}
		sums[p] = "sha256:" + sum
	}
	network, err := json.Marshal(c.networkPluginConfig())
	if err != nil {
		return nil, err
	}
	rt, err := json.Marshal(containerdRuntimeConfig{
		Address:     c.paths.ContainerdSocket,
		Namespace:   runtimeNamespace,
		StateDir:    c.paths.RuntimeState,
		NodeAddress: c.hostIP.String(),
	})
	if err != nil {
		return nil, err
	}
	cfg := &config.Agent{
		APIVersion: config.APIVersion,
		Kind:       config.Kind,
		Kubeconfig: c.pki.kubeconfig("agent"),
		StateDir:   filepath.Join(c.paths.DataDir, "fedlet", "agent"),
		NodeAPI: config.NodeAPI{
			// The API server comes to the node's InternalIP; tests and
			// tools may come to loopback.
			Address:          "0.0.0.0:" + strconv.Itoa(c.opts.Ports.NodeAPI),
			AdvertiseAddress: c.hostIP.String(),
			TLSCertFile:      c.pki.cert(certNodeAPI),
			TLSKeyFile:       c.pki.key(certNodeAPI),
			ClientCAFile:     c.pki.caCert(),
		},
		Plugins: config.Plugins{
			Dirs:      []string{c.opts.BinDir},
			Checksums: sums,
		},
		Runtimes:      []config.Runtime{{Name: "containerd", Plugin: runtimePlugin, Config: rt}},
		Networks:      []config.Network{{Name: "cni", Plugin: networkPlugin, Config: network}},
		Nodes:         []config.Node{{Name: c.opts.NodeName, Runtime: "containerd", Network: "cni"}},
		ClusterDNS:    []string{ClusterDNS},
		ClusterDomain: ClusterDomain,
	}
	// The members runtime serves the members started here and those added
	// with `fedlet member add`.
	members, nodes, err := c.membersRuntime()
	if err != nil {
		return nil, err
	}
	cfg.Runtimes = append(cfg.Runtimes, members)
	cfg.Nodes = append(cfg.Nodes, nodes...)
	cfg.Members = &config.Members{Runtime: membersRuntime}
	return cfg, nil
}

// networkPluginConfig is the CNI network plugin's config: every fedlet
// node of the cluster puts its pods on one bridge, in the cluster CIDR,
// each from its own pod CIDR, so pods of different nodes reach each other
// through it.
func (c *Cluster) networkPluginConfig() cniplugin.Config {
	return cniplugin.Config{
		ConflistFile: c.cniConflist(),
		BinDirs:      []string{filepath.Join(c.opts.BinDir, "cni")},
		CacheDir:     filepath.Join(c.cniDir(), "cache"),
		SharedSubnet: c.opts.PodNetwork.CIDR,
	}
}

// cniDir holds the pod network's conflist, libcni's cache and host-local's
// address allocations.
func (c *Cluster) cniDir() string { return filepath.Join(c.paths.DataDir, "fedlet", "cni") }

func (c *Cluster) cniConflist() string { return filepath.Join(c.cniDir(), "fedlet.conflist") }

// writeConflist writes the pod network's conflist (bridge, host-local,
// portmap) for the agent's network plugin, under the network's own name.
func (c *Cluster) writeConflist() error {
	if err := os.MkdirAll(c.cniDir(), 0o700); err != nil {
		return fmt.Errorf("create CNI directory: %w", err)
	}
	n := c.opts.PodNetwork
	list, err := renameConflist(cniplugin.DefaultConflist(n.Bridge, filepath.Join(c.cniDir(), "ipam")), n.Name)
	if err != nil {
		return err
	}
	return writeFile(c.cniConflist(), list, 0o644)
}

// renameConflist gives a conflist another network name.
func renameConflist(list []byte, name string) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(list, &doc); err != nil {
		return nil, fmt.Errorf("read the default conflist: %w", err)
	}
	doc["name"] = name
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("write the conflist: %w", err)
	}
	return append(out, '\n'), nil
}

func writeAgentConfig(path string, cfg *config.Agent) error {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode agent config: %w", err)
	}
	return writeFile(path, data, 0o644)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// startAgent writes DIR/agent.yaml, runs `fedlet agent` with it, and waits
// until its node is Ready.
func (c *Cluster) startAgent(ctx context.Context) error {
	cfg, err := c.agentConfig()
	if err != nil {
		return err
	}
	if err := writeAgentConfig(c.paths.AgentConfig, cfg); err != nil {
		return err
	}
	if err := os.MkdirAll(c.paths.RuntimeState, 0o700); err != nil {
		return fmt.Errorf("create runtime state directory: %w", err)
	}
	if err := c.writeConflist(); err != nil {
		return err
	}
	c.progress("starting the fedlet agent (node %s)…", c.opts.NodeName)
	// The Node of an earlier run is still there, Ready until the controller
	// manager notices it is stale: only a heartbeat from this agent counts.
	// (Heartbeats are stored to the second.)
	started := time.Now().Truncate(time.Second)
	ch, err := c.start("agent", []string{"agent", "--config", c.paths.AgentConfig}, startOptions{
		path: c.opts.FedletBinary,
		dir:  c.paths.DataDir,
		// The agent finds nothing through PATH; this keeps what it runs ours.
		env: []string{"PATH=" + c.opts.BinDir + string(os.PathListSeparator) + os.Getenv("PATH")},
	})
	if err != nil {
		return err
	}
	c.agent = ch
	took, err := waitReady(ctx, ch, c.opts.NodeReadyTimeout, func(ctx context.Context) error {
		return c.nodeReady(ctx, c.opts.NodeName, started)
	})
	if err != nil {
		return fmt.Errorf("wait for node %s to be Ready (see %s): %w", c.opts.NodeName, ch.log, err)
	}
	c.progress("node %s Ready in %.1fs", c.opts.NodeName, took.Seconds())
	return c.waitMemberNodes(ctx, started)
}

// nodeReady says whether the node is Ready by a heartbeat since started.
func (c *Cluster) nodeReady(ctx context.Context, name string, started time.Time) error {
	node, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type != corev1.NodeReady {
			continue
		}
		switch {
		case cond.LastHeartbeatTime.Time.Before(started):
			return fmt.Errorf("node %s has no heartbeat from this agent yet", name)
		case cond.Status != corev1.ConditionTrue:
			return fmt.Errorf("node %s is not Ready: %s", name, cond.Message)
		}
		return nil
	}
	return fmt.Errorf("node %s has no Ready condition yet", name)
}
