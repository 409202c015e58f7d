package pod

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// waitReason is why a container has not started, as its status says.
type waitReason struct{ reason, message string }

// waitReasons say why containers have not started, by pod and container:
// every step that holds a container back records its reason here, and the
// status generator shows it.
type waitReasons struct {
	mu    sync.Mutex
	byPod map[types.UID]map[string]waitReason
}

func newWaitReasons() *waitReasons {
	return &waitReasons{byPod: map[types.UID]map[string]waitReason{}}
}

// set records why the container waits; nil says it no longer does.
func (w *waitReasons) set(uid types.UID, container string, r *waitReason) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r == nil {
		delete(w.byPod[uid], container)
		return
	}
	if w.byPod[uid] == nil {
		w.byPod[uid] = map[string]waitReason{}
	}
	w.byPod[uid][container] = *r
}

// get is why the container waits, if it does.
func (w *waitReasons) get(uid types.UID, container string) (waitReason, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.byPod[uid][container]
	return r, ok
}

// forget drops the pod's reasons.
func (w *waitReasons) forget(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byPod, uid)
}
