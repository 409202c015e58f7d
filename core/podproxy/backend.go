package podproxy

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/fedlet/fedlet/core/podcontroller"
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

// Runtime implements podcontroller.Strategy: the backend state is kept by
// the pod status stream, with a listing each time it opens, and every 2 s
// while a deleted pod is still there.
func (c *Proxy) Runtime() podcontroller.Runtime {
	return podcontroller.RuntimeWatch[runtimev1.PodStatus]{
		What: "pod",
		Open: func(ctx context.Context) (runtimewatch.Stream[runtimev1.PodStatus], error) {
			return c.backend.WatchPods(ctx, &runtimev1.WatchPodsRequest{Node: c.node})
		},
		List: c.listBackend,
		Apply: func(st *runtimev1.PodStatus) types.UID {
			c.state.set(st)
			return types.UID(st.GetPod().GetUid())
		},
		Poll:      c.anyDeleting,
		PollEvery: deletingPoll,
	}
}

// listBackend replaces the backend state with a fresh listing and returns
// every pod that was or is in either.
func (c *Proxy) listBackend(ctx context.Context) ([]types.UID, error) {
	resp, err := c.backend.ListPods(ctx, &runtimev1.ListPodsRequest{Node: c.node})
	if err != nil {
		return nil, err
	}
	return c.state.replace(resp.Pods), nil
}

func (c *Proxy) anyDeleting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.deleting) > 0
}
