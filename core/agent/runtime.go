package agent

import (
	"context"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/fedlet/fedlet/core/config"
	"github.com/fedlet/fedlet/core/members"
	"github.com/fedlet/fedlet/core/node"
	"github.com/fedlet/fedlet/core/pod"
	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/core/podproxy"
	"github.com/fedlet/fedlet/core/podstatus"
	"github.com/fedlet/fedlet/plugins/pluginhost"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/version"
)

// runtimeNodes is one runtime plugin process and the nodes it serves: the
// configured ones, and the members' when it serves the members. Nodes are
// registered at once, NotReady with the reason while the plugin cannot be
// started; their pods are run once it is.
type runtimeNodes struct {
	spec          pluginhost.RuntimeSpec
	nodes         []config.Node
	memberSecrets *config.Members // nil unless this runtime serves the members
	nodeAPIPort   int32
	// agentAddress is where the API server reaches the node API.
	agentAddress string
	client       kubernetes.Interface
	statuses     *podstatus.Manager
	recorder     func(node string) record.EventRecorder
	registry     *nodeRegistry
	log          *slog.Logger
	dns          dnsSettings
	volumeDir    string                     // where pods' volumes are made
	networks     map[string]*networkProcess // by name, as nodes[].network names them

	// cluster is the agent's one factory of cluster-wide informers
	// (Services), started once and shared by every node's pod controller.
	cluster informers.SharedInformerFactory

	mu       sync.Mutex
	plugin   *pluginhost.Runtime
	startErr error
	// wholePods says that the plugin runs whole pods (and networks them).
	wholePods bool
	served    map[string]*servedNode
	// ready is each node's last Ready condition, for its pod controller.
	ready map[string]corev1.NodeCondition
}

// servedNode is one node being served: its node controller, and its pod
// controller once the plugin runs. cancel stops both; wg waits for them.
type servedNode struct {
	cfg    config.Node
	member bool // a member's virtual node, from its Secret
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	node   *node.Controller
	pods   podController // nil until the plugin runs
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
// it starts), then runs the nodes' pods, and follows the members when it
// serves them, until ctx ends.
func (r *runtimeNodes) run(ctx context.Context, host *pluginhost.Host) {
	defer r.stopAll()
	for _, n := range r.nodes {
		r.serve(ctx, n, false)
	}
	plugin := r.start(ctx, host)
	if plugin == nil {
		return // ctx ended
	}
	r.mu.Lock()
	r.wholePods = plugin.HasCapability(runtimev1.Capability_CAPABILITY_WHOLE_PODS.String())
	r.mu.Unlock()
	for _, sn := range r.servedNodes() {
		if !r.runPods(sn, plugin) {
			return // ctx ended
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if r.memberSecrets != nil {
		wg.Go(func() {
			members.Watch(ctx, r.client, r.memberSecrets.Namespace, func(set map[string]members.Member) {
				r.setMembers(ctx, plugin, set)
			}, r.log)
		})
	}

	events, cancel := plugin.Subscribe()
	defer cancel()
	for ev := range events {
		r.log.Info("runtime plugin "+ev.Kind.String(), "reason", ev.Reason, "message", ev.Message)
		for _, sn := range r.servedNodes() {
			sn.node.Poke()
			if pc := r.podsOf(sn); ev.Kind == pluginhost.Started && pc != nil {
				// A new process: list what runs and adopt it.
				pc.Resync()
			}
		}
	}
}

// serve registers node n and keeps its status, until ctx ends or the node
// is stopped.
func (r *runtimeNodes) serve(ctx context.Context, n config.Node, member bool) *servedNode {
	sn := &servedNode{cfg: n, member: member}
	sn.ctx, sn.cancel = context.WithCancel(ctx)
	sn.node = node.New(node.Config{
		Name:          n.Name,
		Labels:        n.Labels,
		Taints:        taints(n.Taints),
		NodeAPIPort:   r.nodeAPIPort,
		AgentAddress:  r.agentAddress,
		AgentVersion:  version.Kubelet(),
		ReadyObserved: func(ready corev1.NodeCondition) { r.readyObserved(n.Name, ready) },
	}, r.client, r, r.log)
	r.mu.Lock()
	if r.served == nil {
		r.served = map[string]*servedNode{}
	}
	r.served[n.Name] = sn
	r.mu.Unlock()
	sn.wg.Go(func() { sn.node.Run(sn.ctx) })
	return sn
}

// runPods starts the node's pod controller; false if the node's context
// ended first.
func (r *runtimeNodes) runPods(sn *servedNode, plugin *pluginhost.Runtime) bool {
	r.mu.Lock()
	wholePods := r.wholePods
	r.mu.Unlock()
	pc := r.podController(sn.ctx, sn.cfg, plugin, wholePods)
	if pc == nil {
		return false
	}
	r.mu.Lock()
	sn.pods = pc
	ready, seen := r.ready[sn.cfg.Name]
	r.mu.Unlock()
	if l, ok := pc.Strategy().(reachabilityListener); ok && seen {
		l.BackendReachable(ready.Status != corev1.ConditionUnknown, ready.Reason, ready.Message)
	}
	r.registry.add(sn.cfg.Name, pc, plugin.Client())
	sn.wg.Go(func() { pc.Run(sn.ctx) })
	return true
}

// stop stops serving a node and waits until its controllers have returned.
func (r *runtimeNodes) stop(sn *servedNode) {
	sn.cancel()
	sn.wg.Wait()
	r.registry.remove(sn.cfg.Name)
	r.mu.Lock()
	delete(r.served, sn.cfg.Name)
	delete(r.ready, sn.cfg.Name)
	r.mu.Unlock()
}

func (r *runtimeNodes) stopAll() {
	for _, sn := range r.servedNodes() {
		r.stop(sn)
	}
}

// podsOf is the node's pod controller, nil until the plugin runs.
func (r *runtimeNodes) podsOf(sn *servedNode) podController {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sn.pods
}

func (r *runtimeNodes) servedNodes() []*servedNode {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*servedNode, 0, len(r.served))
	for _, sn := range r.served {
		out = append(out, sn)
	}
	return out
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
		return podproxy.New(n.Name, r.podDeps(n.Name, plugin))
	}
	cfg := pod.Config{Node: n.Name, ClusterDNS: r.dns.servers, ClusterDomain: r.dns.domain, PodCIDR: n.PodCIDR, VolumeDir: r.volumeDir}
	if np := r.networks[n.Network]; np != nil {
		// Pods wait for the network: none would start without it.
		if cfg.Network = np.client(ctx); cfg.Network == nil {
			return nil
		}
	}
	return pod.New(cfg, r.podDeps(n.Name, plugin), r.cluster)
}

// podDeps are what a node's pod controller is given: its own pod informers
// (the field selector is per node) and the agent's shared parts.
func (r *runtimeNodes) podDeps(node string, plugin *pluginhost.Runtime) podcontroller.Deps {
	return podcontroller.Deps{
		Client:  r.client,
		Pods:    podcontroller.NodeInformers(r.client, node),
		Runtime: plugin.Client(),
		Status:  r.statuses,
		Events:  r.recorder(node),
		Log:     r.log,
	}
}

// readyObserved passes a node's Ready condition to its pod controller if
// that listens: the backend is unreachable while Ready is Unknown.
func (r *runtimeNodes) readyObserved(node string, ready corev1.NodeCondition) {
	r.mu.Lock()
	if r.ready == nil {
		r.ready = map[string]corev1.NodeCondition{}
	}
	r.ready[node] = ready
	var pods podController
	if sn := r.served[node]; sn != nil {
		pods = sn.pods
	}
	r.mu.Unlock()
	if pods == nil {
		return
	}
	if l, ok := pods.Strategy().(reachabilityListener); ok {
		l.BackendReachable(ready.Status != corev1.ConditionUnknown, ready.Reason, ready.Message)
	}
}

// podController is what runs the pods of one node.
type podController interface {
	podFinder
	Run(ctx context.Context)
	// Resync lists the runtime again: after a plugin restart.
	Resync()
	// Strategy is how the pods are run (podproxy's listens for reachability).
	Strategy() podcontroller.Strategy
}

// start launches the plugin, retrying until it starts or ctx ends; each
// failure is reported on the nodes.
func (r *runtimeNodes) start(ctx context.Context, host *pluginhost.Host) *pluginhost.Runtime {
	var started *pluginhost.Runtime
	retryStart(ctx, func(ctx context.Context) bool {
		plugin, err := host.StartRuntime(ctx, r.spec)
		r.mu.Lock()
		r.plugin, r.startErr = plugin, err
		r.mu.Unlock()
		for _, sn := range r.servedNodes() {
			sn.node.Poke()
		}
		if err != nil {
			r.log.Error("start runtime plugin", "err", err)
			return false
		}
		started = plugin
		return true
	})
	return started
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
