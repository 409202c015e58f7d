package pod

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// runtimeState is the agent's picture of what runs in the backend: the
// sandboxes and container attempts of each pod. It is rebuilt from
// ListSandboxes after any restart and kept current by WatchContainers and
// by the results of the agent's own calls.
type runtimeState struct {
	mu   sync.Mutex
	pods map[types.UID]*podRuntime
	// once listed, the state knows everything that ran before the agent started.
	once bool
}

// podRuntime is what the backend holds for one pod.
type podRuntime struct {
	sandbox *runtimev1.Sandbox
	// attempts of each container by name, oldest first.
	containers map[string][]*runtimev1.ContainerStatus
}

func newRuntimeState() *runtimeState {
	return &runtimeState{pods: map[types.UID]*podRuntime{}}
}

// get returns a copy of what the backend holds for the pod, or nil.
func (s *runtimeState) get(uid types.UID) *podRuntime {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pods[uid]
	if !ok {
		return nil
	}
	c := &podRuntime{sandbox: p.sandbox, containers: map[string][]*runtimev1.ContainerStatus{}}
	for name, attempts := range p.containers {
		c.containers[name] = slices.Clone(attempts)
	}
	return c
}

// uids lists every pod the backend holds something of.
func (s *runtimeState) uids() []types.UID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]types.UID, 0, len(s.pods))
	for uid := range s.pods {
		out = append(out, uid)
	}
	return out
}

// replace swaps the whole picture for a fresh listing and returns every pod
// that was or is in either.
func (s *runtimeState) replace(list []*runtimev1.SandboxStatus) []types.UID {
	fresh := map[types.UID]*podRuntime{}
	for _, sb := range list {
		uid := types.UID(sb.GetSandbox().GetPod().GetUid())
		p := &podRuntime{sandbox: sb.Sandbox, containers: map[string][]*runtimev1.ContainerStatus{}}
		for _, c := range sb.Containers {
			p.containers[c.Name] = insertAttempt(p.containers[c.Name], c)
		}
		fresh[uid] = p
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

func (s *runtimeState) setSandbox(sb *runtimev1.Sandbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pod(types.UID(sb.GetPod().GetUid())).sandbox = sb
}

// setContainer records a container's status unless a newer one of the same
// attempt is already known (events and call results can arrive out of order).
func (s *runtimeState) setContainer(st *runtimev1.ContainerStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pod(types.UID(st.GetPod().GetUid()))
	p.containers[st.Name] = insertAttempt(p.containers[st.Name], st)
}

// dropAttemptsBefore forgets attempts the backend has removed.
func (s *runtimeState) dropAttemptsBefore(uid types.UID, name string, attempt uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pods[uid]; ok {
		p.containers[name] = slices.DeleteFunc(p.containers[name], func(c *runtimev1.ContainerStatus) bool {
			return c.Attempt < attempt
		})
	}
}

func (s *runtimeState) remove(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pods, uid)
}

func (s *runtimeState) pod(uid types.UID) *podRuntime {
	p, ok := s.pods[uid]
	if !ok {
		p = &podRuntime{containers: map[string][]*runtimev1.ContainerStatus{}}
		s.pods[uid] = p
	}
	return p
}

func insertAttempt(attempts []*runtimev1.ContainerStatus, st *runtimev1.ContainerStatus) []*runtimev1.ContainerStatus {
	i, found := slices.BinarySearchFunc(attempts, st.Attempt, func(c *runtimev1.ContainerStatus, a uint32) int {
		return int(c.Attempt) - int(a)
	})
	if !found {
		return slices.Insert(attempts, i, st)
	}
	if st.State >= attempts[i].State {
		attempts[i] = st
	}
	return attempts
}

// latest returns the newest attempt of a container, or nil.
func (p *podRuntime) latest(name string) *runtimev1.ContainerStatus {
	if p == nil || len(p.containers[name]) == 0 {
		return nil
	}
	a := p.containers[name]
	return a[len(a)-1]
}

// previous returns the attempt before the newest, or nil.
func (p *podRuntime) previous(name string) *runtimev1.ContainerStatus {
	if p == nil || len(p.containers[name]) < 2 {
		return nil
	}
	a := p.containers[name]
	return a[len(a)-2]
}

// listed says whether the runtime has been listed at least once: before
// that, a pod without a known sandbox may still have one.
func (s *runtimeState) listed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.once
}

// sandboxOrNil is the pod's sandbox, nil when none is known.
func (p *podRuntime) sandboxOrNil() *runtimev1.Sandbox {
	if p == nil {
		return nil
	}
	return p.sandbox
}
