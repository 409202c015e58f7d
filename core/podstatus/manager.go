// Package podstatus writes pod statuses to the API server: the newest status
// of each pod is kept, unchanged ones are dropped, and a pod whose status
// changes many times while a write is in flight gets one write, not many.
package podstatus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
)

// Manager coalesces and writes pod statuses.
type Manager struct {
	client kubernetes.Interface
	log    *slog.Logger
	queue  workqueue.TypedRateLimitingInterface[types.UID]

	mu      sync.Mutex
	pending map[types.UID]entry
	written map[types.UID]*corev1.PodStatus
}

type entry struct {
	namespace, name string
	status          *corev1.PodStatus
}

// New returns a manager writing through client.
func New(client kubernetes.Interface, log *slog.Logger) *Manager {
	return &Manager{
		client: client,
		log:    log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[types.UID](),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "pod-status"}),
		pending: map[types.UID]entry{},
		written: map[types.UID]*corev1.PodStatus{},
	}
}

// Set records the pod's newest status; it is written soon unless it equals
// what the API server has already.
func (m *Manager) Set(pod *corev1.Pod, status *corev1.PodStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// What the API server has: the last status written, until the
	// informer's copy of the pod shows it; then that copy, and the written
	// one is dropped, since it costs memory for every pod.
	known := &pod.Status
	if last, ok := m.written[pod.UID]; ok {
		if equality.Semantic.DeepEqual(last, &pod.Status) {
			delete(m.written, pod.UID)
		} else {
			known = last
		}
	}
	if equality.Semantic.DeepEqual(known, status) {
		delete(m.pending, pod.UID) // an older, different status must not be written after this one
		return
	}
	m.pending[pod.UID] = entry{namespace: pod.Namespace, name: pod.Name, status: status.DeepCopy()}
	m.queue.Add(pod.UID)
}

// Write writes the pod's status now and waits for the answer: for the last
// status of a pod about to be deleted, which must not be lost behind the
// deletion.
func (m *Manager) Write(ctx context.Context, pod *corev1.Pod, status *corev1.PodStatus) error {
	m.mu.Lock()
	delete(m.pending, pod.UID)
	m.mu.Unlock()
	err := m.patch(ctx, pod.UID, entry{namespace: pod.Namespace, name: pod.Name, status: status})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	return nil
}

// Forget drops what is known of a pod that is gone.
func (m *Manager) Forget(uid types.UID) {
	m.mu.Lock()
	delete(m.pending, uid)
	delete(m.written, uid)
	m.mu.Unlock()
}

// Run writes statuses with the given number of workers until ctx ends.
func (m *Manager) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for m.writeNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	m.queue.ShutDown()
	wg.Wait()
}

func (m *Manager) writeNext(ctx context.Context) bool {
	uid, quit := m.queue.Get()
	if quit {
		return false
	}
	defer m.queue.Done(uid)

	m.mu.Lock()
	e, ok := m.pending[uid]
	delete(m.pending, uid)
	if ok {
		// Counted as written from now on, so that the same status set again
		// while it is being written is not written twice; undone on failure.
		m.written[uid] = e.status
	}
	m.mu.Unlock()
	if !ok {
		return true
	}
	err := m.patch(ctx, uid, e)
	switch {
	case err == nil:
		m.queue.Forget(uid)
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		// The pod is gone, or it is another pod of the same name now.
		m.Forget(uid)
	default:
		m.log.Error("write pod status", "pod", e.namespace+"/"+e.name, "err", err)
		m.mu.Lock()
		delete(m.written, uid)
		if _, newer := m.pending[uid]; !newer {
			m.pending[uid] = e
		}
		m.mu.Unlock()
		m.queue.AddRateLimited(uid)
	}
	return true
}

// patch writes the whole status through the status subresource. The UID in
// the patch is a precondition: a pod recreated under the same name is never
// given its predecessor's status.
func (m *Manager) patch(ctx context.Context, uid types.UID, e entry) error {
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": uid},
		"status":   e.status,
	})
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	_, err = m.client.CoreV1().Pods(e.namespace).Patch(ctx, e.name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("patch pod %s/%s status: %w", e.namespace, e.name, err)
	}
	return nil
}
