package kubernetes

import (
	"sync"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// WatchPodEvents streams the member's events about the node's pods, from
// the moment of the call: each new event, and each one whose count grows.
func (b *Backend) WatchPodEvents(req *runtimev1.WatchPodEventsRequest, stream grpc.ServerStreamingServer[runtimev1.PodEvent]) error {
	m, err := b.memberFor(req.GetNode())
	if err != nil {
		return err
	}
	return serveWatch(m.events, stream)
}

// newEventInformer follows the member's events about pods, in the node's
// namespace when it maps every pod to one.
func newEventInformer(client kubernetes.Interface, namespace string) cache.SharedIndexInformer {
	aboutPods := fields.OneTermEqualSelector("involvedObject.kind", "Pod").String()
	return coreinformers.NewFilteredEventInformer(client, namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.FieldSelector = aboutPods })
}

// eventHandler publishes the events recorded after the informer's first
// listing: a restarted plugin does not replay the member's history.
func (m *member) eventHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, isInInitialList bool) {
			if ev, ok := obj.(*corev1.Event); ok && !isInInitialList {
				m.publishEvent(ev)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*corev1.Event)
			ev, ok2 := newObj.(*corev1.Event)
			if ok1 && ok2 && (eventCount(ev) != eventCount(old) || !ev.LastTimestamp.Equal(&old.LastTimestamp) || ev.Message != old.Message) {
				m.publishEvent(ev)
			}
		},
	}
}

// publishEvent sends ev to the watchers if it is about one of the node's
// pods.
func (m *member) publishEvent(ev *corev1.Event) {
	if !m.events.watching() {
		return
	}
	ref := m.originOfPod(ev.InvolvedObject)
	if ref == nil {
		return // a pod of the member's own, or of another node
	}
	source := ev.Source.Component
	if source == "" {
		source = ev.ReportingController
	}
	m.events.publish(&runtimev1.PodEvent{
		Pod: ref, Type: ev.Type, Reason: ev.Reason, Message: ev.Message,
		Count: eventCount(ev), Source: source,
	})
}

// eventCount is how many times the member saw ev: its count, or, for an
// event recorded through events.k8s.io (the scheduler's), its series'.
func eventCount(ev *corev1.Event) int32 {
	n := ev.Count
	if ev.Series != nil {
		n = max(n, ev.Series.Count)
	}
	return max(n, 1)
}

// originOfPod is the hub pod a member pod stands for, if it is one of the
// node's: from the pod informer, or, for a pod just created that the
// informer has not seen yet (its first events come at once), from what
// CreatePod remembers.
func (m *member) originOfPod(obj corev1.ObjectReference) *runtimev1.PodRef {
	if ref, ok := m.created.get(obj.UID); ok {
		return ref
	}
	item, ok, err := m.pods.GetStore().GetByKey(obj.Namespace + "/" + obj.Name)
	if err != nil || !ok {
		return nil
	}
	pod := item.(*corev1.Pod)
	if pod.UID != obj.UID {
		return nil
	}
	namespace, name := originOf(pod.Namespace, pod.Name, pod.Labels, pod.Annotations)
	return &runtimev1.PodRef{Uid: pod.Labels[LabelOriginUID], Namespace: namespace, Name: name}
}

// recentlyCreated remembers, for a while, the origin of each member pod
// CreatePod made, by the member pod's UID.
type recentlyCreated struct {
	mu    sync.Mutex
	byUID map[types.UID]recentPod
}

type recentPod struct {
	ref *runtimev1.PodRef
	at  time.Time
}

// recentFor is how long a created pod is remembered: longer than the pod
// informer takes to see it.
const recentFor = 2 * time.Minute

func (r *recentlyCreated) add(uid types.UID, ref *runtimev1.PodRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for k, p := range r.byUID {
		if now.Sub(p.at) > recentFor {
			delete(r.byUID, k)
		}
	}
	if r.byUID == nil {
		r.byUID = map[types.UID]recentPod{}
	}
	r.byUID[uid] = recentPod{ref: ref, at: now}
}

func (r *recentlyCreated) get(uid types.UID) (*runtimev1.PodRef, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.byUID[uid]
	return p.ref, ok
}
