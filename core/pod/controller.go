// Package pod runs the pods bound to one node through its runtime plugin: it
// drives each pod through the kubelet's sequence (sandbox, images,
// containers, restarts, termination) and reports what the runtime observes
// as the pod's status.
package pod

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"

	"github.com/fedlet/fedlet/core/podstatus"
	"github.com/fedlet/fedlet/core/probe"
	"github.com/fedlet/fedlet/core/volume"
	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

const (
	// Workers bound how many pods are synced at once.
	workers = 16
	// resyncPeriod relists the runtime even when nothing was heard from it.
	resyncPeriod = time.Minute
	uidIndex     = "uid"
)

// Config describes the node whose pods the controller runs.
type Config struct {
	Node string
	// ClusterDNS are the cluster's DNS servers, given to pods by their
	// dnsPolicy; none means pods get the host's resolver.
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain, "cluster.local" if unset.
	ClusterDomain string
	// Network is the node's network plugin; nil when pods get no network
	// from the agent (a loopback only, or the runtime's own network).
	Network networkv1.NetworkClient
	// PodCIDR is the node's pod address range when its Node has none.
	PodCIDR string
	// VolumeDir is where pods' volumes are made on the node, a directory
	// per pod; empty for a node that makes none.
	VolumeDir string
}

// Controller runs the pods of one node.
type Controller struct {
	node    string
	client  kubernetes.Interface
	runtime runtimev1.RuntimeClient
	status  *podstatus.Manager
	events  record.EventRecorder
	log     *slog.Logger

	informer cache.SharedIndexInformer
	// services are the cluster's Services, for containers' environments.
	services cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[types.UID]
	state    *runtimeState
	// objects are the ConfigMaps and Secrets the pods' environments read.
	objects *podObjects
	// probes run the containers' liveness, readiness and startup probes.
	probes *probe.Manager
	// relist asks the runtime loop to list the runtime again now.
	relist chan struct{}
	// tasks are the goroutines terminating pods; Run waits for them.
	tasks sync.WaitGroup

	// backoff holds the kubelet's exponential delays, keyed by pod UID and container.
	crashBackoff *flowcontrol.Backoff
	pullBackoff  *flowcontrol.Backoff

	mu sync.Mutex
	// waiting says why a container has not started, by pod and container.
	waiting map[types.UID]map[string]waitReason
	// terminating holds pods whose containers are being stopped.
	terminating map[types.UID]bool
	// syncing cancels the sync of a pod in progress (a postStart hook, an
	// image pull) when the pod is deleted meanwhile.
	syncing map[types.UID]context.CancelFunc
	// logMessages are termination messages read from the logs of containers
	// with terminationMessagePolicy FallbackToLogsOnError, by pod and
	// container ID.
	logMessages map[types.UID]map[string]string

	// hostIP is the node's InternalIP and allocatable its resources, learnt
	// from the runtime.
	hostIPMu    sync.Mutex
	hostIP      string
	allocatable corev1.ResourceList

	clusterDNS    []string
	clusterDomain string
	// volumeRoot holds the pods' volumes; tokens are their service-account
	// tokens.
	volumeRoot string
	tokens     *volume.Tokens
	// network attaches pod sandboxes; nil without a network plugin.
	network *podNetwork
}

type waitReason struct{ reason, message string }

// New returns a controller for cfg.Node; Run starts it. runtime bounds the
// calls that have no deadline of their own (the plugin host's client does);
// the controller bounds only a container's stop, by its grace period.
func New(cfg Config, client kubernetes.Interface, runtime runtimev1.RuntimeClient, status *podstatus.Manager, events record.EventRecorder, log *slog.Logger) *Controller {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.Node).String()
		}),
		informers.WithTransform(DropManagedFields))
	c := &Controller{
		node:     cfg.Node,
		client:   client,
		runtime:  runtime,
		status:   status,
		events:   events,
		log:      log.With("node", cfg.Node),
		informer: factory.Core().V1().Pods().Informer(),
		services: informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(DropManagedFields)).
			Core().V1().Services().Informer(),
		queue:         workqueue.NewTypedRateLimitingQueueWithConfig(podRetries(), workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "pods-" + cfg.Node}),
		state:         newRuntimeState(),
		relist:        make(chan struct{}, 1),
		crashBackoff:  flowcontrol.NewBackOff(10*time.Second, 5*time.Minute),
		pullBackoff:   flowcontrol.NewBackOff(10*time.Second, 5*time.Minute),
		waiting:       map[types.UID]map[string]waitReason{},
		terminating:   map[types.UID]bool{},
		syncing:       map[types.UID]context.CancelFunc{},
		logMessages:   map[types.UID]map[string]string{},
		clusterDNS:    cfg.ClusterDNS,
		clusterDomain: cfg.ClusterDomain,
		volumeRoot:    cfg.VolumeDir,
		tokens:        volume.NewTokens(client),
		network:       newPodNetwork(cfg.Network, cfg.PodCIDR),
	}
	if c.clusterDomain == "" {
		c.clusterDomain = "cluster.local"
	}
	c.objects = newPodObjects(client, c.queue.Add, c.log)
	c.probes = c.newProbes()
	c.informer.AddIndexers(cache.Indexers{uidIndex: func(obj any) ([]string, error) {
		return []string{string(obj.(*corev1.Pod).UID)}, nil
	}})
	c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueObject,
		UpdateFunc: func(_, obj any) { c.enqueueObject(obj) },
		DeleteFunc: c.enqueueObject,
	})
	return c
}

// Resync makes the controller list the runtime again and re-check every pod:
// call it when the plugin process has restarted.
func (c *Controller) Resync() {
	select {
	case c.relist <- struct{}{}:
	default:
	}
}

// Run starts the informer, the runtime watch and the workers, and returns
// when ctx ends and all of them have stopped.
func (c *Controller) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { c.informer.Run(ctx.Done()) })
	wg.Go(func() { c.services.RunWithContext(ctx) })
	wg.Go(func() { c.objects.run(ctx) })
	wg.Go(func() { c.probes.Run(ctx) })
	// Containers get the Services' variables: none starts before they are known.
	if !cache.WaitForCacheSync(ctx.Done(), c.informer.HasSynced, c.services.HasSynced) {
		wg.Wait()
		return
	}
	wg.Go(func() { c.watchRuntime(ctx) })
	for range workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	c.tasks.Wait()
}

func (c *Controller) enqueueObject(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if p, ok := obj.(*corev1.Pod); ok {
		if p.DeletionTimestamp != nil {
			c.cancelSync(p.UID)
			c.probes.Stop(p.UID) // as the kubelet, no probe kills a pod being deleted
		}
		c.queue.Add(p.UID)
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	uid, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(uid)
	retryAfter, err := c.sync(ctx, uid)
	switch {
	case err != nil:
		c.log.Error("sync pod", "uid", uid, "err", err)
		c.queue.AddRateLimited(uid)
	case retryAfter > 0:
		c.queue.Forget(uid)
		c.queue.AddAfter(uid, retryAfter)
	default:
		c.queue.Forget(uid)
	}
	return true
}

// podByUID returns the pod with the UID from the informer's cache, or nil.
func (c *Controller) podByUID(uid types.UID) *corev1.Pod {
	objs, err := c.informer.GetIndexer().ByIndex(uidIndex, string(uid))
	if err != nil || len(objs) == 0 {
		return nil
	}
	return objs[0].(*corev1.Pod)
}

// servicesIn lists the Services of namespace.
func (c *Controller) servicesIn(namespace string) []*corev1.Service {
	objs, err := c.services.GetIndexer().ByIndex(cache.NamespaceIndex, namespace)
	if err != nil {
		return nil
	}
	out := make([]*corev1.Service, 0, len(objs))
	for _, obj := range objs {
		out = append(out, obj.(*corev1.Service))
	}
	return out
}

// PodByName returns the pod of this node with that namespace and name.
func (c *Controller) PodByName(namespace, name string) (*corev1.Pod, bool) {
	obj, ok, err := c.informer.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	return obj.(*corev1.Pod), true
}

func (c *Controller) setWaiting(uid types.UID, container string, w *waitReason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w == nil {
		delete(c.waiting[uid], container)
		return
	}
	if c.waiting[uid] == nil {
		c.waiting[uid] = map[string]waitReason{}
	}
	c.waiting[uid][container] = *w
}

func (c *Controller) waitingOf(uid types.UID, container string) (waitReason, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.waiting[uid][container]
	return w, ok
}

// cancellable derives the context of a pod's sync that the pod's deletion
// cancels; done releases it.
func (c *Controller) cancellable(ctx context.Context, uid types.UID) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	c.syncing[uid] = cancel
	c.mu.Unlock()
	if p := c.podByUID(uid); p == nil || p.DeletionTimestamp != nil {
		cancel() // deleted before the registration above could see it
	}
	return ctx, func() {
		c.mu.Lock()
		delete(c.syncing, uid)
		c.mu.Unlock()
		cancel()
	}
}

// cancelSync ends the pod's sync in progress, if any: a deleted pod is
// terminated at once rather than after a hook or a pull.
func (c *Controller) cancelSync(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cancel, ok := c.syncing[uid]; ok {
		cancel()
	}
}

// forget drops what the controller knows of a pod whose sandbox is gone. A
// terminated pod stays marked as terminating while its object exists, so
// that the syncs its last status and its deletion cause do not terminate it
// again.
func (c *Controller) forget(uid types.UID) {
	gone := c.podByUID(uid) == nil
	c.mu.Lock()
	delete(c.waiting, uid)
	if gone {
		delete(c.terminating, uid)
	}
	delete(c.logMessages, uid)
	c.mu.Unlock()
	c.objects.release(uid)
	c.probes.Forget(uid)
	c.state.remove(uid)
	c.status.Forget(uid)
	c.network.forget(uid)
	c.removeVolumes(uid)
}

// nodeIP returns the node's InternalIP, asking the runtime until it answers.
func (c *Controller) nodeIP() string {
	c.hostIPMu.Lock()
	defer c.hostIPMu.Unlock()
	if c.hostIP == "" {
		c.describeNode()
	}
	return c.hostIP
}

// nodeAllocatable returns the node's allocatable resources, asking the
// runtime until it answers.
func (c *Controller) nodeAllocatable() corev1.ResourceList {
	c.hostIPMu.Lock()
	defer c.hostIPMu.Unlock()
	if c.allocatable == nil {
		c.describeNode()
	}
	return c.allocatable
}

// describeNode learns the node's address and allocatable resources from the
// runtime; called with hostIPMu held.
func (c *Controller) describeNode() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	node, err := c.runtime.GetNode(ctx, &runtimev1.GetNodeRequest{Node: c.node})
	if err != nil {
		c.log.Warn("describe the node through the runtime", "err", err)
		return
	}
	for _, a := range node.Addresses {
		if a.Type == string(corev1.NodeInternalIP) {
			c.hostIP = a.Address
		}
	}
	allocatable := corev1.ResourceList{}
	for name, value := range node.Allocatable {
		if q, err := resource.ParseQuantity(value); err == nil {
			allocatable[corev1.ResourceName(name)] = q
		}
	}
	c.allocatable = allocatable
}

func backoffKey(uid types.UID, container string) string {
	return fmt.Sprintf("%s/%s", uid, container)
}

// DropManagedFields is an informer transform that leaves out of a pod cache
// what the agent never reads and never writes back (statuses are merge
// patches): server-side apply's field ownership, a third of a small pod's
// size.
func DropManagedFields(obj any) (any, error) {
	if acc, ok := obj.(metav1.ObjectMetaAccessor); ok {
		acc.GetObjectMeta().SetManagedFields(nil)
	}
	return obj, nil
}

// podRetries is how soon a pod whose sync failed is synced again: at once,
// then twice as late each time up to 10 s, as the kubelet's pod workers. (The
// controller default grows to 16 minutes: a pod that failed a dozen times
// while the runtime plugin restarted would then wait for minutes.)
func podRetries() workqueue.TypedRateLimiter[types.UID] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](5*time.Millisecond, 10*time.Second)
}
