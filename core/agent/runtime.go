package agent

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/fedlet/fedlet/core/config"
	"github.com/fedlet/fedlet/core/node"
	"github.com/fedlet/fedlet/core/pluginhost"
	"github.com/fedlet/fedlet/core/pod"
	"github.com/fedlet/fedlet/core/podproxy"
	"github.com/fedlet/fedlet/core/podstatus"
	"github.com/fedlet/fedlet/core/version"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// runtimeNodes is one runtime plugin process and the nodes it serves. The
// nodes are registered at once, NotReady with the reason while the plugin
// cannot be started; their pods are run once it is.
type runtimeNodes struct {
	spec        pluginhost.RuntimeSpec
	nodes       []config.Node
	nodeAPIPort int32
	// agentAddress is where the API server reaches the node API.
	agentAddress string
	client       kubernetes.Interface
	statuses     *podstatus.Manager
	recorder     func(node string) record.EventRecorder
	registry     *nodeRegistry
	log          *slog.Logger
	dns          dnsSettings
	networks     map[string]*networkProcess // by name, as nodes[].network names them

	mu       sync.Mutex
	plugin   *pluginhost.Runtime
	startErr error
	// wholePods says that the plugin runs whole pods (and networks them).
	wholePods bool
	// ready is each node's last Ready condition; reachability listens to
	// it for the node's whole-pod controller.
	ready        map[string]corev1.NodeCondition
	reachability map[string]reachabilityListener
}

// reachabilityListener is a pod controller that marks its pods while the
// backend cannot be observed (podproxy's).
type reachabilityListener interface {
	BackendReachable(reachable bool, reason, message string)
}

// dnsSettings are the cluster DNS settings every node's pods get.
type dnsSettings struct {
	servers []string
	domain  string
}

// run registers the nodes, starts the plugin (retrying with back-off until
// it starts), then runs the nodes' pods until ctx ends.
func (r *runtimeNodes) run(ctx context.Context, host *pluginhost.Host) {
	var wg sync.WaitGroup
	defer wg.Wait()
	nodes := make([]*node.Controller, 0, len(r.nodes))
	for _, n := range r.nodes {
		nc := node.New(node.Config{
			Name:         n.Name,
			Labels:       n.Labels,
			Taints:       taints(n.Taints),
			NodeAPIPort:  r.nodeAPIPort,
			AgentAddress: r.agentAddress,
			AgentVersion: version.Kubelet(),
			ReadyObserved: func(ready corev1.NodeCondition) {
				r.readyObserved(n.Name, ready)
			},
		}, r.client, r, r.log)
		nodes = append(nodes, nc)
		wg.Go(func() { nc.Run(ctx) })
	}

	plugin := r.start(ctx, host, nodes)
	if plugin == nil {
		return // ctx ended
	}
	wholePods := hasCapability(plugin.Describe(), runtimev1.Capability_CAPABILITY_WHOLE_PODS)
	r.mu.Lock()
	r.wholePods = wholePods
	r.mu.Unlock()
	pods := make([]podController, 0, len(r.nodes))
	for _, n := range r.nodes {
		pc := r.podController(ctx, n, plugin, wholePods)
		if pc == nil {
			return // ctx ended
		}
		pods = append(pods, pc)
		if l, ok := pc.(reachabilityListener); ok {
			r.listenReachability(n.Name, l)
		}
		r.registry.add(n.Name, pc, plugin.Client())
		wg.Go(func() { pc.Run(ctx) })
	}

	events, cancel := plugin.Subscribe()
	defer cancel()
	for ev := range events {
		r.log.Info("runtime plugin "+ev.Kind.String(), "reason", ev.Reason, "message", ev.Message)
		for _, nc := range nodes {
			nc.Poke()
		}
		if ev.Kind == pluginhost.Started {
			// A new process: list what runs and adopt it.
			for _, pc := range pods {
				pc.Resync()
			}
		}
	}
}

// podController runs a node's pods: through the pod-level calls when the
// backend runs whole pods (a member cluster: it also networks them, so the
// node's network is not used), else step by step; nil if ctx ended while
// the node's network was awaited.
func (r *runtimeNodes) podController(ctx context.Context, n config.Node, plugin *pluginhost.Runtime, wholePods bool) podController {
	if wholePods {
		if n.Network != "" {
			r.log.Warn("the node names a network, but its runtime runs whole pods and networks them itself: the network is not used", "node", n.Name, "network", n.Network)
		}
		return podproxy.New(podproxy.Config{Node: n.Name}, r.client, plugin.Client(), r.statuses, r.recorder(n.Name), r.log)
	}
	cfg := pod.Config{Node: n.Name, ClusterDNS: r.dns.servers, ClusterDomain: r.dns.domain, PodCIDR: n.PodCIDR}
	if np := r.networks[n.Network]; np != nil {
		// Pods wait for the network: none would start without it.
		if cfg.Network = np.client(ctx); cfg.Network == nil {
			return nil
		}
	}
	return pod.New(cfg, r.client, plugin.Client(), r.statuses, r.recorder(n.Name), r.log)
}

// readyObserved passes a node's Ready condition to its listener: the
// backend is unreachable while Ready is Unknown.
func (r *runtimeNodes) readyObserved(node string, ready corev1.NodeCondition) {
	r.mu.Lock()
	if r.ready == nil {
		r.ready = map[string]corev1.NodeCondition{}
	}
	r.ready[node] = ready
	l := r.reachability[node]
	r.mu.Unlock()
	if l != nil {
		l.BackendReachable(ready.Status != corev1.ConditionUnknown, ready.Reason, ready.Message)
	}
}

// listenReachability makes l hear of node's Ready condition, starting
// with the last one observed.
func (r *runtimeNodes) listenReachability(node string, l reachabilityListener) {
	r.mu.Lock()
	if r.reachability == nil {
		r.reachability = map[string]reachabilityListener{}
	}
	r.reachability[node] = l
	ready, seen := r.ready[node]
	r.mu.Unlock()
	if seen {
		l.BackendReachable(ready.Status != corev1.ConditionUnknown, ready.Reason, ready.Message)
	}
}

// podController is what runs the pods of one node.
type podController interface {
	podFinder
	Run(ctx context.Context)
	// Resync lists the runtime again: after a plugin restart.
	Resync()
}

func hasCapability(d *runtimev1.DescribeResponse, want runtimev1.Capability) bool {
	return slices.Contains(d.GetCapabilities(), want)
}

// start launches the plugin, retrying until it starts or ctx ends; each
// failure is reported on the nodes.
func (r *runtimeNodes) start(ctx context.Context, host *pluginhost.Host, nodes []*node.Controller) *pluginhost.Runtime {
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Cap: time.Minute, Steps: 1 << 30}
	for {
		plugin, err := host.StartRuntime(ctx, r.spec)
		r.mu.Lock()
		r.plugin, r.startErr = plugin, err
		r.mu.Unlock()
		for _, nc := range nodes {
			nc.Poke()
		}
		if err == nil {
			return plugin
		}
		r.log.Error("start runtime plugin", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff.Step()):
		}
	}
}

// Client implements node.Backend.
func (r *runtimeNodes) Client() runtimev1.RuntimeClient {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.plugin.Client()
}

// NetworkState implements node.NetworkReporter. The nodes of a runtime
// that runs whole pods have no network of the agent's.
func (r *runtimeNodes) NetworkState(ctx context.Context, node string) (bool, bool, string, string) {
	r.mu.Lock()
	wholePods := r.wholePods
	r.mu.Unlock()
	if wholePods {
		return false, false, "", ""
	}
	for _, n := range r.nodes {
		if np := r.networks[n.Network]; n.Name == node && np != nil {
			ready, reason, message := np.state(ctx, node)
			return true, ready, reason, message
		}
	}
	return false, false, "", ""
}

// State implements node.Backend.
func (r *runtimeNodes) State() (bool, string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.plugin == nil {
		if r.startErr == nil {
			return false, pluginhost.ReasonStartFailed, "the runtime plugin is starting"
		}
		return false, pluginhost.ReasonStartFailed, r.startErr.Error()
	}
	return r.plugin.State()
}

func taints(in []config.Taint) []corev1.Taint {
	out := make([]corev1.Taint, 0, len(in))
	for _, t := range in {
		out = append(out, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	return out
}
