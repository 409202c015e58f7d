// Package podcontroller runs the pods bound to one node: it owns what every
// way of running them shares (the node's pod informer and its UID index, the
// rate-limited queue and its workers, the runtime watch with its relists and
// resyncs, the watches of the ConfigMaps and Secrets the pods read, the node's
// address and the status writer) and hands each pod's sync to a Strategy:
// step by step through a host runtime (core/pod), or whole to a backend that
// runs pods itself (core/podproxy).
package podcontroller

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/fedlet/fedlet/core/podstatus"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

const (
	// resyncPeriod relists the runtime even when nothing was heard from it.
	resyncPeriod = time.Minute
	uidIndex     = "uid"
)

// Config describes the node and how its pods are worked on.
type Config struct {
	Node string
	// What names the node's pods in logs and the queue's metrics ("pod",
	// "proxied pod").
	What string
	// Workers bound how many pods are synced at once.
	Workers int
	// MaxRetryDelay bounds the back-off of a pod whose sync keeps failing:
	// it is synced again at once, then twice as late each time up to this.
	// (The controller default grows to 16 minutes: a pod that failed a
	// dozen times while the runtime plugin restarted would then wait for
	// minutes.)
	MaxRetryDelay time.Duration
	// NodeRetry is how often an unknown node address is asked for again;
	// zero asks on every use until the runtime answers.
	NodeRetry time.Duration
	// WaitFor are the caches, besides the pods', that must be filled before
	// the first pod is synced (the cluster's Services, for containers'
	// environments).
	WaitFor []cache.InformerSynced
}

// Deps are what the agent gives every pod controller.
type Deps struct {
	Client kubernetes.Interface
	// Pods is the node's own informer factory (NodeInformers): the pod
	// informer is per node, as the field selector on spec.nodeName is.
	Pods informers.SharedInformerFactory
	// Runtime is the node's runtime plugin; it bounds its calls.
	Runtime runtimev1.RuntimeClient
	Status  *podstatus.Manager
	Events  record.EventRecorder
	Log     *slog.Logger
}

// Controller runs the pods of one node through a Strategy.
type Controller struct {
	node     string
	what     string
	workers  int
	waitFor  []cache.InformerSynced
	client   kubernetes.Interface
	runtime  runtimev1.RuntimeClient
	status   *podstatus.Manager
	events   record.EventRecorder
	log      *slog.Logger
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[types.UID]
	objects  *Objects
	nodeInfo *NodeInfo
	strategy Strategy
	// relist asks the runtime loop to list the runtime again now.
	relist chan struct{}

	mu sync.Mutex
	// syncing cancels the sync of a pod in progress (a postStart hook, an
	// image pull, a hand-over) when the pod's deletion is seen meanwhile.
	syncing map[types.UID]context.CancelFunc
}

// New returns a controller for cfg.Node whose pods are synced by the
// strategy that build returns; build is given the controller, whose
// methods the strategy uses. Run starts it.
func New(cfg Config, deps Deps, build func(*Controller) Strategy) *Controller {
	c := &Controller{
		node:     cfg.Node,
		what:     cfg.What,
		workers:  cfg.Workers,
		waitFor:  cfg.WaitFor,
		client:   deps.Client,
		runtime:  deps.Runtime,
		status:   deps.Status,
		events:   deps.Events,
		log:      deps.Log.With("node", cfg.Node),
		factory:  deps.Pods,
		informer: deps.Pods.Core().V1().Pods().Informer(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](5*time.Millisecond, cfg.MaxRetryDelay),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: strings.ReplaceAll(cfg.What, " ", "-") + "s-" + cfg.Node}),
		relist:  make(chan struct{}, 1),
		syncing: map[types.UID]context.CancelFunc{},
	}
	if c.workers <= 0 {
		c.workers = 1
	}
	c.objects = NewObjects(c.client, c.queue.Add, c.log)
	c.nodeInfo = newNodeInfo(c.runtime, c.node, cfg.NodeRetry, c.log)
	_ = c.informer.AddIndexers(cache.Indexers{uidIndex: func(obj any) ([]string, error) {
		return []string{string(obj.(*corev1.Pod).UID)}, nil
	}})
	_, _ = c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueObject,
		UpdateFunc: func(_, obj any) { c.enqueueObject(obj) },
		DeleteFunc: c.enqueueObject,
	})
	c.strategy = build(c)
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

// Run starts the pod informer and the object watches, then, once the caches
// are filled, the strategy's own loops, the runtime watch and the workers;
// it returns when ctx ends and all of them have stopped.
func (c *Controller) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	wg.Go(func() { c.objects.Run(ctx) })
	if !cache.WaitForCacheSync(ctx.Done(), append([]cache.InformerSynced{c.informer.HasSynced}, c.waitFor...)...) {
		return
	}
	// After the sync, so that what the strategy's loops hear of a pod (a
	// backend's event) finds it.
	wg.Go(func() { c.strategy.Run(ctx) })
	wg.Go(func() { c.strategy.Runtime().follow(ctx, c) })
	for range c.workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
}

// Strategy is the strategy syncing the node's pods.
func (c *Controller) Strategy() Strategy { return c.strategy }

// Node is the node's name.
func (c *Controller) Node() string { return c.node }

// Client is the API server's client.
func (c *Controller) Client() kubernetes.Interface { return c.client }

// Runtime is the node's runtime plugin.
func (c *Controller) Runtime() runtimev1.RuntimeClient { return c.runtime }

// Status writes the pods' statuses.
func (c *Controller) Status() *podstatus.Manager { return c.status }

// Events records events on the node's pods.
func (c *Controller) Events() record.EventRecorder { return c.events }

// Log is the node's logger.
func (c *Controller) Log() *slog.Logger { return c.log }

// Objects are the ConfigMaps and Secrets the node's pods read.
func (c *Controller) Objects() *Objects { return c.objects }

// NodeInfo is what the runtime says of the node: its address and resources.
func (c *Controller) NodeInfo() *NodeInfo { return c.nodeInfo }

// PodByName returns the pod of this node with that namespace and name.
func (c *Controller) PodByName(namespace, name string) (*corev1.Pod, bool) {
	obj, ok, err := c.informer.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	return obj.(*corev1.Pod), true
}

// PodByUID returns the pod with the UID from the informer's cache, or nil.
func (c *Controller) PodByUID(uid types.UID) *corev1.Pod {
	objs, err := c.informer.GetIndexer().ByIndex(uidIndex, string(uid))
	if err != nil || len(objs) == 0 {
		return nil
	}
	return objs[0].(*corev1.Pod)
}

// Enqueue has the pod synced soon.
func (c *Controller) Enqueue(uid types.UID) { c.queue.Add(uid) }

// Retry has the pod synced again after its back-off: something done beside
// its sync (a termination) failed.
func (c *Controller) Retry(uid types.UID) { c.queue.AddRateLimited(uid) }

// Forget drops what the controller keeps of a pod gone from both sides: the
// objects it read and its last status.
func (c *Controller) Forget(uid types.UID) {
	c.objects.Release(uid)
	c.status.Forget(uid)
}

// EnqueueAfter has the pod synced after delay (a token due for a refresh).
func (c *Controller) EnqueueAfter(uid types.UID, delay time.Duration) { c.queue.AddAfter(uid, delay) }

// EnqueueAll has every pod of the node synced soon.
func (c *Controller) EnqueueAll() {
	for _, p := range c.Pods() {
		c.queue.Add(p.UID)
	}
}

// Pods lists the pods of the node the informer has.
func (c *Controller) Pods() []*corev1.Pod {
	objs := c.informer.GetStore().List()
	out := make([]*corev1.Pod, 0, len(objs))
	for _, obj := range objs {
		out = append(out, obj.(*corev1.Pod))
	}
	return out
}
