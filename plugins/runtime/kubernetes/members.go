package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Client limits of each member's client: a member serves one hub's pods
// of one node, and its priority and fairness is the real limit.
const (
	memberQPS   = 100
	memberBurst = 200
)

// originUIDIndex indexes a node's member pods by the hub pod's UID.
const originUIDIndex = "originUID"

// member is one member cluster behind one virtual node: its client, the
// informers that keep what GetNode, ListPods and WatchPods read, and the
// goroutines that probe its health and collect its garbage. Everything is
// started by start and stopped by stop.
type member struct {
	cfg    MemberConfig
	origin string
	logger *slog.Logger

	rest   *rest.Config
	client kubernetes.Interface

	// pods are this node's member pods (origin labels), whole.
	pods cache.SharedIndexInformer
	// nodes are the member's nodes, without their image lists.
	nodes cache.SharedIndexInformer
	// load is every bound, non-terminal pod of the member, reduced to its
	// requests: what the member's own workloads and others take.
	load cache.SharedIndexInformer
	// eventsAbout are the member's events about pods.
	eventsAbout cache.SharedIndexInformer

	health  health
	watch   *watchHub[*runtimev1.PodStatus]
	events  *watchHub[*runtimev1.PodEvent]
	created recentlyCreated
	deletes deletions
	objects *reflectedObjects

	kickHealth   chan struct{}
	kickGarbage  chan struct{}
	kickServices chan struct{}
	// hub is what the plugin reads of the hub, nil without config field hub.
	hub    func() *hubView
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newMember builds the member's client from its kubeconfig and its
// informers, without starting anything.
func newMember(cfg MemberConfig, origin string, hub func() *hubView, logger *slog.Logger) (*member, error) {
	rc, err := restConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", cfg.credentials(), err)
	}
	rc.QPS, rc.Burst = memberQPS, memberBurst
	rc.UserAgent = "fedlet-runtime-kubernetes/" + Version + " (node " + cfg.Node + ")"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cfg.credentials(), err)
	}
	m := &member{
		cfg:          cfg,
		origin:       origin,
		logger:       logger.With("node", cfg.Node),
		rest:         rc,
		client:       client,
		watch:        newWatchHub[*runtimev1.PodStatus](),
		events:       newWatchHub[*runtimev1.PodEvent](),
		deletes:      deletions{asked: map[string]time.Time{}},
		objects:      newReflectedObjects(),
		kickHealth:   make(chan struct{}, 1),
		kickGarbage:  make(chan struct{}, 1),
		kickServices: make(chan struct{}, 1),
		hub:          hub,
	}
	m.health.host = rc.Host
	m.health.first = make(chan struct{})

	ours := nodeSelector(origin, cfg.Node).String()
	m.pods = coreinformers.NewFilteredPodInformer(client, cfg.Namespace, 0,
		cache.Indexers{originUIDIndex: indexByOriginUID},
		func(o *metav1.ListOptions) { o.LabelSelector = ours })
	m.nodes = coreinformers.NewFilteredNodeInformer(client, 0, cache.Indexers{}, nil)
	m.eventsAbout = newEventInformer(client, cfg.Namespace)
	// The scheduler's own selection of the pods that take a node's room.
	bound := fields.AndSelectors(
		fields.OneTermNotEqualSelector("spec.nodeName", ""),
		fields.OneTermNotEqualSelector("status.phase", string(corev1.PodSucceeded)),
		fields.OneTermNotEqualSelector("status.phase", string(corev1.PodFailed)),
	).String()
	m.load = coreinformers.NewFilteredPodInformer(client, metav1.NamespaceAll, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.FieldSelector = bound })

	for _, err := range []error{
		m.pods.SetTransform(stripPod),
		m.nodes.SetTransform(stripNode),
		m.load.SetTransform(podLoad),
	} {
		if err != nil {
			return nil, fmt.Errorf("set up informers: %w", err)
		}
	}
	for name, inf := range map[string]cache.SharedIndexInformer{"pods": m.pods, "nodes": m.nodes, "load": m.load, "events": m.eventsAbout} {
		if err := inf.SetWatchErrorHandlerWithContext(m.watchError(name)); err != nil {
			return nil, fmt.Errorf("set up informers: %w", err)
		}
	}
	if _, err := m.pods.AddEventHandler(m.podEvents()); err != nil {
		return nil, fmt.Errorf("set up pod informer: %w", err)
	}
	if _, err := m.eventsAbout.AddEventHandler(m.eventHandler()); err != nil {
		return nil, fmt.Errorf("set up event informer: %w", err)
	}
	return m, nil
}

// start runs the informers, the health probe and the garbage collector
// until stop.
func (m *member) start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	for _, inf := range []cache.SharedIndexInformer{m.pods, m.nodes, m.load, m.eventsAbout} {
		m.wg.Go(func() { inf.RunWithContext(ctx) })
	}
	m.wg.Go(func() { m.probeLoop(ctx) })
	m.wg.Go(func() { m.garbageLoop(ctx) })
	m.wg.Go(func() { m.serviceLoop(ctx) })
}

// stop stops everything start started and ends every watch with err.
func (m *member) stop(err error) {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	m.watch.closeAll(err)
	m.events.closeAll(err)
}

// watchError is told of every failed list or watch of an informer, in
// place of client-go's handler, which would log each retry: the reflector
// retries with back-off by itself, and the probe, kicked at once, says
// once whether the member is reachable and lets us in.
func (m *member) watchError(informer string) cache.WatchErrorHandlerWithContext {
	return func(_ context.Context, _ *cache.Reflector, err error) {
		m.logger.Debug("member informer failed", "informer", informer, "err", err)
		kick(m.kickHealth)
	}
}

// synced says whether the informers have listed the member once.
func (m *member) synced() bool {
	return m.pods.HasSynced() && m.nodes.HasSynced() && m.load.HasSynced()
}

// waitSynced waits until the informers have listed the member once, or ctx
// ends; it says which.
func (m *member) waitSynced(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), m.pods.HasSynced, m.nodes.HasSynced, m.load.HasSynced)
}

// namespaceFor is the member namespace of a hub namespace.
func (m *member) namespaceFor(hubNamespace string) string {
	if m.cfg.Namespace != "" {
		return m.cfg.Namespace
	}
	return hubNamespace
}

// kick wakes a loop waiting on ch without ever blocking.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func indexByOriginUID(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	if uid := pod.Labels[LabelOriginUID]; uid != "" {
		return []string{uid}, nil
	}
	return nil, nil
}

// stripPod drops what the plugin never reads of its own pods.
func stripPod(obj any) (any, error) {
	if pod, ok := obj.(*corev1.Pod); ok {
		pod.ManagedFields = nil
	}
	return obj, nil
}

// stripNode drops what the plugin never reads of a node, the image list
// above all, which is most of a node object.
func stripNode(obj any) (any, error) {
	if node, ok := obj.(*corev1.Node); ok {
		node.ManagedFields = nil
		node.Status.Images = nil
		node.Status.VolumesAttached = nil
		node.Status.VolumesInUse = nil
	}
	return obj, nil
}

// restConfig reads the member's kubeconfig, from its file or its data.
func restConfig(cfg MemberConfig) (*rest.Config, error) {
	if cfg.Kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	}
	return clientcmd.RESTConfigFromKubeConfig(cfg.KubeconfigData)
}
