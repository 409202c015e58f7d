package podcontroller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// objectKind is a kind of object the pods of a node read: ConfigMaps and
// Secrets, named as the kubelet names them in its messages.
type objectKind string

const (
	kindConfigMap objectKind = "configmap"
	kindSecret    objectKind = "secret"
)

type objectKey struct {
	kind            objectKind
	namespace, name string
}

func (k objectKey) String() string { return fmt.Sprintf("%s %s/%s", k.kind, k.namespace, k.name) }

// Objects serves the ConfigMaps and Secrets the node's pods refer to,
// as the kubelet's watch-based managers do: each object is watched on its
// own (a list and watch of that one name) from the first time a pod asks
// for it until no pod of the node refers to it any more. A change to one
// re-queues the pods that asked for it, so that a container waiting for a
// missing object or key starts as soon as it appears. Nothing else is read:
// the agent holds no Secret that none of its pods uses.
type Objects struct {
	client  kubernetes.Interface
	changed func(types.UID)
	log     *slog.Logger

	mu sync.Mutex
	// ctx bounds every watch; nil until run, and then no watch starts.
	ctx     context.Context
	watches map[objectKey]*objectWatch
	byPod   map[types.UID]map[objectKey]bool
	running sync.WaitGroup
}

type objectWatch struct {
	informer cache.SharedIndexInformer
	stop     context.CancelFunc
	pods     map[types.UID]bool
}

// NewObjects returns the objects of a node's pods. changed is called with
// the UID of every pod that asked for an object each time that object
// changes, appears or goes. Run lets its watches start.
func NewObjects(client kubernetes.Interface, changed func(types.UID), log *slog.Logger) *Objects {
	return &Objects{
		client:  client,
		changed: changed,
		log:     log,
		watches: map[objectKey]*objectWatch{},
		byPod:   map[types.UID]map[objectKey]bool{},
	}
}

// Run lets watches start, bounded by ctx, and returns when ctx has ended
// and every watch has stopped.
func (o *Objects) Run(ctx context.Context) {
	o.mu.Lock()
	o.ctx = ctx
	o.mu.Unlock()
	<-ctx.Done()
	o.mu.Lock()
	o.ctx = nil
	o.mu.Unlock()
	o.running.Wait()
}

// ConfigMap returns the pod's ConfigMap called name, or a NotFound error
// naming it as the kubelet does (`configmap "name" not found`).
func (o *Objects) ConfigMap(ctx context.Context, pod *corev1.Pod, name string) (*corev1.ConfigMap, error) {
	obj, err := o.get(ctx, pod, objectKey{kindConfigMap, pod.Namespace, name})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.ConfigMap), nil
}

// Secret returns the pod's Secret called name, or a NotFound error. Both
// objects are shared: never modify them.
func (o *Objects) Secret(ctx context.Context, pod *corev1.Pod, name string) (*corev1.Secret, error) {
	obj, err := o.get(ctx, pod, objectKey{kindSecret, pod.Namespace, name})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Secret), nil
}

// get reads the object from its watch once that has listed it, and from
// the API server until then, so that the first container to need an object
// does not wait for a watch to start.
func (o *Objects) get(ctx context.Context, pod *corev1.Pod, key objectKey) (runtime.Object, error) {
	if inf := o.watch(pod.UID, key); inf != nil && inf.HasSynced() {
		obj, ok, err := inf.GetStore().GetByKey(key.namespace + "/" + key.name)
		switch {
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", key, err)
		case !ok:
			return nil, notFound(key)
		}
		return obj.(runtime.Object), nil
	}
	var obj runtime.Object
	var err error
	switch key.kind {
	case kindConfigMap:
		obj, err = o.client.CoreV1().ConfigMaps(key.namespace).Get(ctx, key.name, metav1.GetOptions{})
	case kindSecret:
		obj, err = o.client.CoreV1().Secrets(key.namespace).Get(ctx, key.name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil, notFound(key)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return obj, nil
}

func notFound(key objectKey) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: string(key.kind)}, key.name)
}

// watch records that the pod refers to the object and returns the object's
// watch, started if it was not; nil before run.
func (o *Objects) watch(uid types.UID, key objectKey) cache.SharedIndexInformer {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ctx == nil {
		return nil
	}
	w, ok := o.watches[key]
	if !ok {
		w = o.start(key)
		o.watches[key] = w
	}
	w.pods[uid] = true
	if o.byPod[uid] == nil {
		o.byPod[uid] = map[objectKey]bool{}
	}
	o.byPod[uid][key] = true
	return w.informer
}

// start runs a watch of one object; called with mu held.
func (o *Objects) start(key objectKey) *objectWatch {
	selector := fields.OneTermEqualSelector("metadata.name", key.name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			if key.kind == kindSecret {
				return o.client.CoreV1().Secrets(key.namespace).List(ctx, opts)
			}
			return o.client.CoreV1().ConfigMaps(key.namespace).List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			if key.kind == kindSecret {
				return o.client.CoreV1().Secrets(key.namespace).Watch(ctx, opts)
			}
			return o.client.CoreV1().ConfigMaps(key.namespace).Watch(ctx, opts)
		},
	}
	var example runtime.Object = &corev1.ConfigMap{}
	if key.kind == kindSecret {
		example = &corev1.Secret{}
	}
	w := &objectWatch{
		// The wrapper tells the reflector whether the client can stream the
		// initial list (client-go's fake clientset cannot).
		informer: cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, o.client), example, 0, cache.Indexers{}),
		pods:     map[types.UID]bool{},
	}
	notify := func(any) {
		o.mu.Lock()
		pods := make([]types.UID, 0, len(w.pods))
		for uid := range w.pods {
			pods = append(pods, uid)
		}
		o.mu.Unlock()
		for _, uid := range pods {
			o.changed(uid)
		}
	}
	_, _ = w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: notify,
	})
	ctx, stop := context.WithCancel(o.ctx)
	w.stop = stop
	o.running.Go(func() { w.informer.RunWithContext(ctx) })
	o.log.Debug("watching", "object", key.String())
	return w
}

// Release forgets what the pod referred to, and stops the watches no other
// pod needs.
func (o *Objects) Release(uid types.UID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for key := range o.byPod[uid] {
		w := o.watches[key]
		if w == nil {
			continue
		}
		delete(w.pods, uid)
		if len(w.pods) == 0 {
			w.stop()
			delete(o.watches, key)
			o.log.Debug("stopped watching", "object", key.String())
		}
	}
	delete(o.byPod, uid)
}
