// Package podproxy runs the pods bound to one node whose backend runs whole
// pods itself (CAPABILITY_WHOLE_PODS: a member cluster behind a virtual
// node). The backend runs each pod; the agent hands it over with the
// ConfigMaps and Secrets it refers to (CreatePod), deletes it when it is
// deleted (DeletePod) and writes what the backend reports (WatchPods,
// ListPods) as the pod's status.
package podproxy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/fedlet/fedlet/core/pod"
	"github.com/fedlet/fedlet/core/podstatus"
	"github.com/fedlet/fedlet/core/volume"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

const (
	// workers bound how many pods are synced at once; each sync waits at
	// most for one backend call.
	workers = 8
	// resyncPeriod relists the backend even when nothing was heard from it.
	resyncPeriod = time.Minute
	uidIndex     = "uid"
)

// Config describes the node whose pods the controller runs.
type Config struct {
	Node string
}

// Controller runs the pods of one node through a backend that runs whole pods.
type Controller struct {
	node    string
	client  kubernetes.Interface
	backend runtimev1.RuntimeClient
	status  *podstatus.Manager
	events  record.EventRecorder
	log     *slog.Logger

	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[types.UID]
	state    *backendState
	// objects are the ConfigMaps and Secrets the pods refer to.
	objects *pod.Objects
	// relist asks the backend loop to list the backend again now.
	relist chan struct{}

	mu sync.Mutex
	// handed is what was last handed over of each pod (fingerprint), so
	// that a pod the backend runs is handed over again only when that changes.
	handed map[types.UID]string
	// deleting holds the pods whose deletion the backend has accepted, with
	// its grace period, and which it still lists: the backend is listed
	// often until it no longer does.
	deleting map[types.UID]int64
	// lost holds pods the backend lost: they must never be handed over again.
	lost map[types.UID]bool
	// reported is the last status written for each pod from the backend's,
	// the base of its final status.
	reported map[types.UID]*corev1.PodStatus

	// reach is whether the backend can be observed; guarded by mu.
	reach reachability
	// tokens are the pods' service-account tokens, handed over as Secrets.
	tokens *volume.Tokens

	nodeIPMu   sync.Mutex
	nodeIP     string
	nodeIPTime time.Time
}

// New returns a controller for cfg.Node; Run starts it. backend bounds the
// calls (the plugin host's client does).
func New(cfg Config, client kubernetes.Interface, backend runtimev1.RuntimeClient, status *podstatus.Manager, events record.EventRecorder, log *slog.Logger) *Controller {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.Node).String()
		}),
		informers.WithTransform(pod.DropManagedFields))
	c := &Controller{
		node:     cfg.Node,
		client:   client,
		backend:  backend,
		status:   status,
		events:   events,
		log:      log.With("node", cfg.Node),
		informer: factory.Core().V1().Pods().Informer(),
		// Retries grow to 30 s at most: a member that was down is tried again
		// soon after it is back (the controller default grows to 16 minutes).
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](5*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "proxied-pods-" + cfg.Node}),
		state:    newBackendState(),
		relist:   make(chan struct{}, 1),
		handed:   map[types.UID]string{},
		deleting: map[types.UID]int64{},
		lost:     map[types.UID]bool{},
		reported: map[types.UID]*corev1.PodStatus{},
		reach:    reachability{reachable: true},
		tokens:   volume.NewTokens(client),
	}
	c.objects = pod.NewObjects(client, c.queue.Add, c.log)
	_ = c.informer.AddIndexers(cache.Indexers{uidIndex: func(obj any) ([]string, error) {
		return []string{string(obj.(*corev1.Pod).UID)}, nil
	}})
	_, _ = c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueObject,
		UpdateFunc: func(_, obj any) { c.enqueueObject(obj) },
		DeleteFunc: c.enqueueObject,
	})
	return c
}

// Resync makes the controller list the backend again and re-check every
// pod: call it when the plugin process has restarted.
func (c *Controller) Resync() {
	select {
	case c.relist <- struct{}{}:
	default:
	}
}

// Run starts the informer, the backend watch and the workers, and returns
// when ctx ends and all of them have stopped.
func (c *Controller) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { c.informer.RunWithContext(ctx) })
	wg.Go(func() { c.objects.Run(ctx) })
	if !cache.WaitForCacheSync(ctx.Done(), c.informer.HasSynced) {
		return
	}
	wg.Go(func() { c.watchBackend(ctx) })
	wg.Go(func() { c.followEvents(ctx) })
	for range workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
}

// PodByName returns the pod of this node with that namespace and name.
func (c *Controller) PodByName(namespace, name string) (*corev1.Pod, bool) {
	obj, ok, err := c.informer.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	return obj.(*corev1.Pod), true
}

func (c *Controller) enqueueObject(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if p, ok := obj.(*corev1.Pod); ok {
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
	case err != nil && ctx.Err() == nil:
		c.log.Error("sync proxied pod", "uid", uid, "err", err)
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

// forget drops everything known of a pod that is gone from both sides.
func (c *Controller) forget(uid types.UID) {
	c.mu.Lock()
	delete(c.handed, uid)
	delete(c.deleting, uid)
	delete(c.lost, uid)
	delete(c.reported, uid)
	c.mu.Unlock()
	c.objects.Release(uid)
	c.state.remove(uid)
	c.status.Forget(uid)
	c.tokens.Forget(uid)
}

// nodeAddress is the virtual node's InternalIP as the backend reports it
// (GetNode), asked again at most every nodeIPRetry while unknown; empty
// until known.
func (c *Controller) nodeAddress(ctx context.Context) string {
	c.nodeIPMu.Lock()
	defer c.nodeIPMu.Unlock()
	if c.nodeIP != "" || time.Since(c.nodeIPTime) < nodeIPRetry {
		return c.nodeIP
	}
	c.nodeIPTime = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	node, err := c.backend.GetNode(ctx, &runtimev1.GetNodeRequest{Node: c.node})
	if err != nil {
		c.log.Warn("describe the node through the runtime", "err", err)
		return ""
	}
	for _, a := range node.Addresses {
		if a.Type == string(corev1.NodeInternalIP) {
			c.nodeIP = a.Address
		}
	}
	return c.nodeIP
}

// nodeIPRetry is how often an unknown node address is asked for again.
const nodeIPRetry = 10 * time.Second
