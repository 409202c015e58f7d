package podproxy

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fedlet/fedlet/core/runtimewatch"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

const (
	// deletingPoll is how often the backend is listed while a deleted pod
	// is still there: only a listing says that a pod is gone.
	deletingPoll = 2 * time.Second
)

// backendState is the agent's picture of the pods the backend runs: the
// newest status of each, from ListPods, rebuilt after any restart, and
// WatchPods and CreatePod between listings.
type backendState struct {
	mu   sync.Mutex
	pods map[types.UID]*runtimev1.PodStatus
	// once listed, the state knows every pod handed over before the agent started.
	once bool
}

func newBackendState() *backendState {
	return &backendState{pods: map[types.UID]*runtimev1.PodStatus{}}
}

// get returns what the backend last reported of the pod, and whether it
// has the pod at all.
func (s *backendState) get(uid types.UID) (*runtimev1.PodStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.pods[uid]
	return st, ok
}

func (s *backendState) set(st *runtimev1.PodStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pods[types.UID(st.GetPod().GetUid())] = st
}

func (s *backendState) remove(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pods, uid)
}

// replace swaps the whole picture for a fresh listing and returns every pod
// that was or is in either.
func (s *backendState) replace(list []*runtimev1.PodStatus) []types.UID {
	fresh := make(map[types.UID]*runtimev1.PodStatus, len(list))
	for _, st := range list {
		fresh[types.UID(st.GetPod().GetUid())] = st
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	touched := make([]types.UID, 0, len(fresh)+len(s.pods))
	for uid := range s.pods {
		touched = append(touched, uid)
	}
	for uid := range fresh {
		if _, ok := s.pods[uid]; !ok {
			touched = append(touched, uid)
		}
	}
	s.pods = fresh
	s.once = true
	return touched
}

// listed says whether the backend has been listed at least once: before
// that, a pod it does not seem to have may run there already.
func (s *backendState) listed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.once
}

// watchBackend keeps the backend state current: it opens the pod status
// stream, lists the backend (so nothing that happened before the stream
// opened is missed), then applies statuses until the stream breaks, a
// relist is asked for, or the resync period passes.
func (c *Controller) watchBackend(ctx context.Context) {
	runtimewatch.Follow(ctx, c.log, runtimewatch.Watch[runtimev1.PodStatus]{
		What: "pod",
		Open: func(ctx context.Context) (runtimewatch.Stream[runtimev1.PodStatus], error) {
			return c.backend.WatchPods(ctx, &runtimev1.WatchPodsRequest{Node: c.node})
		},
		List:  c.listBackend,
		Serve: c.applyPodStatuses,
	})
}

func (c *Controller) applyPodStatuses(ctx context.Context, events <-chan *runtimev1.PodStatus, failed <-chan error) error {
	resync := time.NewTimer(resyncPeriod)
	defer resync.Stop()
	poll := time.NewTicker(deletingPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.relist:
			return nil
		case <-resync.C:
			return nil
		case <-poll.C:
			if c.anyDeleting() {
				// The stream stays open: what it reports meanwhile waits
				// and is applied after the listing, so nothing newer is lost.
				if err := c.listBackend(ctx); err != nil {
					return err
				}
			}
		case st := <-events:
			c.state.set(st)
			c.queue.Add(types.UID(st.GetPod().GetUid()))
		case err := <-failed:
			return err
		}
	}
}

// listBackend replaces the backend state with a fresh listing and re-checks
// every pod of the node and every pod the backend holds.
func (c *Controller) listBackend(ctx context.Context) error {
	resp, err := c.backend.ListPods(ctx, &runtimev1.ListPodsRequest{Node: c.node})
	if err != nil {
		return err
	}
	for _, uid := range c.state.replace(resp.Pods) {
		c.queue.Add(uid)
	}
	for _, obj := range c.informer.GetStore().List() {
		c.queue.Add(obj.(*corev1.Pod).UID)
	}
	return nil
}

func (c *Controller) anyDeleting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.deleting) > 0
}
