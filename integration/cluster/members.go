package cluster

// Member clusters: the federation `fedlet up --members N` shows on one
// machine. Each member is a whole cluster of its own (datastore, control
// plane, registry, containerd, an agent with one containerd node) under
// DIR/members/NAME, on free ports, with its own pod network. The hub, the
// cluster the user talks to, is started after them; its agent serves one
// virtual node per member through the kubernetes runtime plugin, which
// runs the pods bound to that node in the member. Members stop at the
// agent: kube-proxy and CoreDNS program and answer for the whole machine,
// so the hub owns them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/fedlet/fedlet/core/config"
	"github.com/fedlet/fedlet/core/members"
)

// Names and marks of a federation on one machine.
const (
	// HubName is the hub's cluster name, which the pods it federates carry
	// in their members as the fedlet.io/origin-cluster label.
	HubName = "hub"
	// MemberLabel is the label of a member's virtual node on the hub; its
	// value is the member's name. Pods select a member with it.
	MemberLabel = members.Label
	// VirtualNodeTaintKey and VirtualNodeTaintValue make the taint
	// (effect NoSchedule) of every virtual node, as virtual-kubelet's:
	// only pods that tolerate it are federated.
	VirtualNodeTaintKey   = members.TaintKey
	VirtualNodeTaintValue = members.TaintValue
)

// The hub agent's runtime for its virtual nodes, and its plugin.
const (
	membersRuntime   = "members"
	kubernetesPlugin = "fedlet-runtime-kubernetes"
)

// MemberName is the name of the i-th member cluster (from 1): its virtual
// node on the hub and its directory under DIR/members.
func MemberName(i int) string { return fmt.Sprintf("member-%d", i) }

// memberOf ties a member cluster to its hub: its name, and the hub's
// channel of failures, on which it reports its own.
type memberOf struct {
	name   string
	failed chan error
}

// kubernetesRuntimeConfig is the kubernetes runtime plugin's config.
type kubernetesRuntimeConfig struct {
	// Origin is the hub's name, for the origin labels.
	Origin  string         `json:"origin"`
	Members []memberConfig `json:"members"`
	// Hub lets the plugin read the hub's Services, to reflect them.
	Hub *hubConfig `json:"hub,omitempty"`
}

type hubConfig struct {
	Kubeconfig string `json:"kubeconfig"`
	// APIServer is the hub's API server as member pods reach it: its
	// kubernetes Service, which the machine's one kube-proxy (the hub's)
	// serves to every bridge.
	APIServer string `json:"apiServer"`
}

// memberConfig is one member cluster behind one virtual node.
type memberConfig struct {
	Node       string `json:"node"`
	Kubeconfig string `json:"kubeconfig"`
	// Namespace "" keeps each pod in its namespace of the hub.
	Namespace string `json:"namespace"`
}

// startMembers starts opts.Members member clusters, one after the other,
// before the hub's own parts: the hub's agent needs them serving to report
// its virtual nodes Ready.
func (c *Cluster) startMembers(ctx context.Context) error {
	taken := map[int]bool{}
	for _, p := range c.opts.Ports.list() {
		taken[p] = true
	}
	for i := 1; i <= c.opts.Members; i++ {
		name := MemberName(i)
		// Free now, and none of the hub's, which listens only later.
		ports, err := freePortsBesides(taken)
		if err != nil {
			return fmt.Errorf("member cluster %s: %w", name, err)
		}
		for _, p := range ports.list() {
			taken[p] = true
		}
		opts := Options{
			DataDir:          filepath.Join(c.paths.Members, name),
			BinDir:           c.opts.BinDir,
			FedletBinary:     c.opts.FedletBinary,
			Datastore:        DatastoreSQLite,
			Ports:            ports,
			Until:            PartAgent,
			BuildMissing:     c.opts.BuildMissing,
			NodeName:         name + "-node",
			NodeReadyTimeout: c.opts.NodeReadyTimeout,
			PodNetwork:       memberPodNetwork(i),
			Progress:         &prefixWriter{w: c.opts.Progress, prefix: name + ": "},
			Logger:           c.opts.Logger.With("cluster", name),
		}
		c.progress("starting member cluster %s in %s (pods in %s on bridge %s)…",
			name, opts.DataDir, opts.PodNetwork.CIDR, opts.PodNetwork.Bridge)
		m, err := start(ctx, opts, &memberOf{name: name, failed: c.sup.failed})
		if err != nil {
			return fmt.Errorf("start member cluster %s: %w", name, err)
		}
		c.members = append(c.members, m)
	}
	return nil
}

// stopMembers stops the member clusters, the last started first.
func (c *Cluster) stopMembers(ctx context.Context) error {
	var errs []error
	for i := len(c.members) - 1; i >= 0; i-- {
		m := c.members[i]
		c.progress("stopping member cluster %s…", m.name)
		if err := m.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop member cluster %s: %w", m.name, err))
		}
	}
	return errors.Join(errs...)
}

// membersRuntime is the hub agent's runtime for the virtual nodes, and one
// node per member: labelled with its name, tainted so that only pods that
// ask for it go there, and with no network (the member gives its pods
// theirs).
func (c *Cluster) membersRuntime() (config.Runtime, []config.Node, error) {
	// The agent's credentials read the hub's Services and EndpointSlices.
	rc := kubernetesRuntimeConfig{Origin: c.name, Hub: &hubConfig{Kubeconfig: c.pki.kubeconfig("agent"), APIServer: net.JoinHostPort(firstServiceIP(), "443")}}
	var nodes []config.Node
	for _, m := range c.members {
		rc.Members = append(rc.Members, memberConfig{Node: m.name, Kubeconfig: m.Kubeconfig()})
		nodes = append(nodes, config.Node{
			Name:    m.name,
			Runtime: membersRuntime,
			Labels:  map[string]string{MemberLabel: m.name},
			Taints:  []config.Taint{{Key: VirtualNodeTaintKey, Value: VirtualNodeTaintValue, Effect: "NoSchedule"}},
		})
	}
	raw, err := json.Marshal(rc)
	if err != nil {
		return config.Runtime{}, nil, fmt.Errorf("encode the %s runtime's config: %w", membersRuntime, err)
	}
	return config.Runtime{Name: membersRuntime, Plugin: kubernetesPlugin, Config: raw}, nodes, nil
}

// waitMemberNodes waits until the agent reports every member's virtual
// node Ready by a heartbeat since started.
func (c *Cluster) waitMemberNodes(ctx context.Context, started time.Time) error {
	for _, m := range c.members {
		took, err := waitReady(ctx, c.agent, c.opts.NodeReadyTimeout, func(ctx context.Context) error {
			return c.nodeReady(ctx, m.name, started)
		})
		if err != nil {
			return fmt.Errorf("wait for the virtual node of member cluster %s to be Ready (the hub agent's log is %s; the member's logs are in %s): %w",
				m.name, c.agent.log, m.paths.Logs, err)
		}
		c.progress("virtual node %s (member cluster %s) Ready in %.1fs", m.name, m.name, took.Seconds())
	}
	return nil
}

// list is every port of p.
func (p Ports) list() []int {
	return []int{p.APIServer, p.Datastore, p.EtcdPeer, p.ControllerManager, p.Scheduler, p.Registry, p.NodeAPI,
		p.KubeProxyHealthz, p.KubeProxyMetrics, p.DNS, p.DNSHealth, p.DNSReady}
}

// freePortsBesides picks free ports of which none is in taken: ports
// chosen for a cluster that does not listen on them yet.
func freePortsBesides(taken map[int]bool) (Ports, error) {
	for try := 0; ; try++ {
		p, err := FreePorts()
		if err != nil {
			return Ports{}, err
		}
		clash := false
		for _, port := range p.list() {
			clash = clash || taken[port]
		}
		if !clash {
			return p, nil
		}
		if try == 10 {
			return Ports{}, fmt.Errorf("pick free ports: they keep colliding with ports already given to another cluster")
		}
	}
}

// prefixWriter starts every line written through it with prefix, so that a
// member's progress reads apart from the hub's.
type prefixWriter struct {
	w      io.Writer
	prefix string

	mu      sync.Mutex
	midLine bool // the last write ended inside a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for rest := b; len(rest) > 0; {
		if !p.midLine {
			out = append(out, p.prefix...)
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			out = append(out, rest...)
			p.midLine = true
			break
		}
		out = append(out, rest[:i+1]...)
		rest = rest[i+1:]
		p.midLine = false
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
