package kubernetes

import (
	"context"
	"maps"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// WatchPods streams the status of the node's member pods: one PodStatus
// each time a pod appears or its status changes (the pods that exist when
// the watch starts are sent too, as the informer replays them or as they
// are first listed). A pod deleted behind the agent's back (by someone in
// the member, an eviction that removed it, its namespace's deletion) ends
// with its last status and lost=true. A pod whose deletion DeletePod asked
// for sends nothing more when it goes: its last status was sent as it
// terminated, and the agent sees it gone through ListPods.
//
// The stream ends with Unavailable when the plugin is reconfigured or
// stops, and with ResourceExhausted when the watcher falls too far behind;
// the agent then lists and watches anew.
func (b *Backend) WatchPods(req *runtimev1.WatchPodsRequest, stream grpc.ServerStreamingServer[runtimev1.PodStatus]) error {
	m, err := b.memberFor(req.GetNode())
	if err != nil {
		return err
	}
	return serveWatch(m.watch, stream)
}

// serveWatch sends what the hub publishes to one watcher's stream, until
// the hub ends the watch or the caller goes. The protocol's promise:
// headers go out once the watch is registered, so a caller that waits for
// them and then lists misses nothing.
func serveWatch[T any](hub *watchHub[T], stream interface {
	SendHeader(metadata.MD) error
	Send(T) error
	Context() context.Context
}) error {
	w := hub.add()
	defer hub.remove(w)
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case msg := <-w.ch:
			if err := stream.Send(msg); err != nil {
				return err
			}
		case <-w.done:
			for { // what was queued before the end
				select {
				case msg := <-w.ch:
					if err := stream.Send(msg); err != nil {
						return err
					}
				default:
					return w.err
				}
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

// podEvents is the one handler of the member's pod informer: it turns
// events into PodStatus messages for every watcher, and decides which
// deletions were asked for.
func (m *member) podEvents() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				m.publish(pod, false)
				kick(m.kickServices) // a Service may select it
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*corev1.Pod)
			pod, ok2 := newObj.(*corev1.Pod)
			if ok1 && ok2 && !equality.Semantic.DeepEqual(old.Status, pod.Status) {
				m.publish(pod, false)
			}
			if ok1 && ok2 && !maps.Equal(old.Labels, pod.Labels) {
				kick(m.kickServices)
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			kick(m.kickGarbage) // its ConfigMaps and Secrets may be unused now
			kick(m.kickServices)
			uid := pod.Labels[LabelOriginUID]
			if m.deletes.take(uid) {
				return
			}
			m.logger.Warn("member pod deleted behind the agent's back", "pod", pod.Namespace+"/"+pod.Name, "origin_uid", uid)
			m.publish(pod, true)
		},
	}
}

func (m *member) publish(pod *corev1.Pod, lost bool) {
	if !m.watch.watching() {
		return
	}
	st, err := podStatus(pod)
	if err != nil {
		m.logger.Error("encode member pod status", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return
	}
	st.Lost = lost
	m.watch.publish(st)
}

// podStatus is what the protocol says of a member pod: the hub pod it
// stands for, and its status as the member reports it.
func podStatus(pod *corev1.Pod) (*runtimev1.PodStatus, error) {
	data, err := pod.Status.Marshal()
	if err != nil {
		return nil, err
	}
	namespace, name := originOf(pod.Namespace, pod.Name, pod.Labels, pod.Annotations)
	return &runtimev1.PodStatus{
		Pod:    &runtimev1.PodRef{Uid: pod.Labels[LabelOriginUID], Namespace: namespace, Name: name},
		Status: data,
	}, nil
}

// deletions are the hub pods (by UID) whose deletion DeletePod asked for,
// in memory only: a restarted plugin reports a pod deleted before the
// restart as lost, which for a pod the agent is deleting changes nothing.
type deletions struct {
	mu    sync.Mutex
	asked map[string]time.Time
}

func (d *deletions) ask(uid string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.asked[uid]; !ok {
		d.asked[uid] = time.Now()
	}
}

// take says whether uid's deletion was asked for, and forgets it.
func (d *deletions) take(uid string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.asked[uid]
	delete(d.asked, uid)
	return ok
}

// prune forgets the deletions asked before cutoff of pods that are gone:
// a DeletePod repeated after its pod went gets no delete event to take it.
func (d *deletions) prune(cutoff time.Time, present func(uid string) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for uid, at := range d.asked {
		if at.Before(cutoff) && !present(uid) {
			delete(d.asked, uid)
		}
	}
}

// watchBuffer is how many statuses a watcher may lag behind.
const watchBuffer = 1024

// watchHub fans messages (pod statuses, pod events) out to the watchers
// of one member's node.
type watchHub[T any] struct {
	mu       sync.Mutex
	watchers map[*watcher[T]]struct{}
}

type watcher[T any] struct {
	ch   chan T
	done chan struct{} // closed when the hub ends the watch; err says why
	err  error
}

func newWatchHub[T any]() *watchHub[T] {
	return &watchHub[T]{watchers: map[*watcher[T]]struct{}{}}
}

func (h *watchHub[T]) add() *watcher[T] {
	w := &watcher[T]{ch: make(chan T, watchBuffer), done: make(chan struct{})}
	h.mu.Lock()
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	return w
}

func (h *watchHub[T]) remove(w *watcher[T]) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
}

func (h *watchHub[T]) watching() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watchers) > 0
}

// publish queues msg for every watcher, never blocking: a watcher whose
// queue is full is ended instead.
func (h *watchHub[T]) publish(msg T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		select {
		case w.ch <- msg:
		default:
			h.endLocked(w, status.Error(codes.ResourceExhausted, "the watch fell behind; list again and watch anew"))
		}
	}
}

// closeAll ends every watch with err.
func (h *watchHub[T]) closeAll(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		h.endLocked(w, err)
	}
}

func (h *watchHub[T]) endLocked(w *watcher[T], err error) {
	w.err = err
	close(w.done)
	delete(h.watchers, w)
}
