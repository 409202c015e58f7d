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

	"github.com/fedlet/fedlet/core/config"
)

// runtimePlugin is the containerd runtime plugin's binary in the bin directory.
const runtimePlugin = "fedlet-runtime-containerd"

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
	sum, err := fileSHA256(filepath.Join(c.opts.BinDir, runtimePlugin))
	if err != nil {
		return nil, fmt.Errorf("pin %s: %w", runtimePlugin, err)
	}
	rt, err := json.Marshal(containerdRuntimeConfig{
		Address:     c.paths.ContainerdSocket,
		Namespace:   runtimeNamespace,
		StateDir:    c.paths.RuntimeState,
		NodeAddress: "127.0.0.1",
	})
	if err != nil {
		return nil, err
	}
	return &config.Agent{
		APIVersion: config.APIVersion,
		Kind:       config.Kind,
		Kubeconfig: c.pki.kubeconfig("agent"),
		NodeAPI: config.NodeAPI{
			Address:      "127.0.0.1:" + strconv.Itoa(c.opts.Ports.NodeAPI),
			TLSCertFile:  c.pki.cert(certNodeAPI),
			TLSKeyFile:   c.pki.key(certNodeAPI),
			ClientCAFile: c.pki.caCert(),
		},
		Plugins: config.Plugins{
			Dirs:      []string{c.opts.BinDir},
			Checksums: map[string]string{runtimePlugin: "sha256:" + sum},
		},
		Runtimes: []config.Runtime{{Name: "containerd", Plugin: runtimePlugin, Config: rt}},
		Nodes:    []config.Node{{Name: c.opts.NodeName, Runtime: "containerd"}},
	}, nil
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
		node, err := c.client.CoreV1().Nodes().Get(ctx, c.opts.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type != corev1.NodeReady {
				continue
			}
			switch {
			case cond.LastHeartbeatTime.Time.Before(started):
				return fmt.Errorf("node %s has no heartbeat from this agent yet", c.opts.NodeName)
			case cond.Status != corev1.ConditionTrue:
				return fmt.Errorf("node %s is not Ready: %s", c.opts.NodeName, cond.Message)
			}
			return nil
		}
		return fmt.Errorf("node %s has no Ready condition yet", c.opts.NodeName)
	})
	if err != nil {
		return fmt.Errorf("wait for node %s to be Ready (see %s): %w", c.opts.NodeName, ch.log, err)
	}
	c.progress("node %s Ready in %.1fs", c.opts.NodeName, took.Seconds())
	return nil
}
