package sdktest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// Addresses WholePods reports: the virtual node's own (GetNode), and the
// host its pods seem to run on inside the backend, which means nothing to
// the agent's cluster.
const (
	WholePodsNodeIP = "203.0.113.1"
	WholePodsHostIP = "192.0.2.1"
)

// WholePods is an in-memory runtime with CAPABILITY_WHOLE_PODS, standing in
// for a member cluster behind a virtual node. CreatePod runs a pod at once
// (phase Running, every container running and ready); DeletePod ends it
// (every container exits 0, phase Succeeded, told to watchers) and then
// forgets it; ListPods and WatchPods report what it holds. Only a listing
// says that a pod is gone, as the protocol has it. The sandbox and
// container calls are Runtime's.
type WholePods struct {
	*Runtime

	podsMu     sync.Mutex
	pods       map[string]map[string]*heldPod      // node -> pod UID -> pod
	watchers   map[*podWatcher]string              // -> node
	eventSubs  map[chan *runtimev1.PodEvent]string // WatchPodEvents calls -> node
	calls      map[string]*PodCalls                // by pod UID
	failCreate error
	hold       bool // deletions wait for HoldDeletions(false)
	podCount   int
}

// PodCalls counts the pod-level calls about one pod.
type PodCalls struct {
	// Creates counts the CreatePod calls that started the pod, Updates
	// those for a pod that ran already.
	Creates, Updates int
	// DeleteGraces are the grace periods of the DeletePod calls, in order.
	DeleteGraces []int64
}

type heldPod struct {
	request  *runtimev1.CreatePodRequest
	ref      *runtimev1.PodRef
	status   *corev1.PodStatus
	deleting bool
}

// NewWholePods returns a WholePods that describes itself with name and version.
func NewWholePods(name, version string) *WholePods {
	return &WholePods{
		Runtime:   New(name, version),
		pods:      map[string]map[string]*heldPod{},
		watchers:  map[*podWatcher]string{},
		eventSubs: map[chan *runtimev1.PodEvent]string{},
		calls:     map[string]*PodCalls{},
	}
}

// Describe reports CAPABILITY_WHOLE_PODS and CAPABILITY_OWN_NETWORK.
func (w *WholePods) Describe(ctx context.Context, req *runtimev1.DescribeRequest) (*runtimev1.DescribeResponse, error) {
	resp, err := w.Runtime.Describe(ctx, req)
	if err != nil {
		return nil, err
	}
	resp.Capabilities = []runtimev1.Capability{runtimev1.Capability_CAPABILITY_WHOLE_PODS, runtimev1.Capability_CAPABILITY_OWN_NETWORK}
	return resp, nil
}

// GetNode reports what Runtime does, at the address WholePodsNodeIP.
func (w *WholePods) GetNode(ctx context.Context, req *runtimev1.GetNodeRequest) (*runtimev1.Node, error) {
	node, err := w.Runtime.GetNode(ctx, req)
	if err != nil {
		return nil, err
	}
	node.Addresses = []*runtimev1.NodeAddress{{Type: string(corev1.NodeInternalIP), Address: WholePodsNodeIP}}
	node.ContainerRuntimeVersion = "memory-cluster://" + w.version
	return node, nil
}

// FailCreates makes every later CreatePod fail with err (a gRPC status
// error is returned as it is); nil lets them succeed again.
func (w *WholePods) FailCreates(err error) {
	w.podsMu.Lock()
	defer w.podsMu.Unlock()
	w.failCreate = err
}

// HoldDeletions makes later DeletePod calls only record the deletion, as a
// member whose pods take their time to stop: the pods stay listed. Called
// with false, it ends and forgets every pod whose deletion was asked.
func (w *WholePods) HoldDeletions(hold bool) {
	w.podsMu.Lock()
	defer w.podsMu.Unlock()
	w.hold = hold
	if hold {
		return
	}
	for node, pods := range w.pods {
		for uid, p := range pods {
			if p.deleting {
				w.end(node, uid, p)
			}
		}
	}
}

// Calls returns the pod-level calls made about the pod with that UID.
func (w *WholePods) Calls(uid string) PodCalls {
	w.podsMu.Lock()
	defer w.podsMu.Unlock()
	c, ok := w.calls[uid]
	if !ok {
		return PodCalls{}
	}
	return PodCalls{Creates: c.Creates, Updates: c.Updates, DeleteGraces: slices.Clone(c.DeleteGraces)}
}

// Request returns the last CreatePod request of a pod the node holds.
func (w *WholePods) Request(node, uid string) (*runtimev1.CreatePodRequest, bool) {
	w.podsMu.Lock()
	defer w.podsMu.Unlock()
	p, ok := w.pods[node][uid]
	if !ok {
		return nil, false
	}
	return p.request, true
}

// SetStatus changes the status of a pod the node holds, as its backend
// would observe it, and tells the watchers.
func (w *WholePods) SetStatus(node, uid string, change func(*corev1.PodStatus)) error {
	w.podsMu.Lock()
	defer w.podsMu.Unlock()
	p, ok := w.pods[node][uid]
	if !ok {
		return fmt.Errorf("node %s holds no pod %s", node, uid)
	}
	change(p.status)
	w.notify(node, p, false)
	return nil
}

// Lose forgets a pod as a member that lost it would (deleted there, or
// evicted): watchers are told it is lost; listings no longer have it.
func (w *WholePods) Lose(node, uid string) error {
	w.podsMu.Lock()
	defer w.podsMu.Unlock()
	p, ok := w.pods[node][uid]
	if !ok {
		return fmt.Errorf("node %s holds no pod %s", node, uid)
	}
	delete(w.pods[node], uid)
	w.notify(node, p, true)
	return nil
}

// CreatePod runs the pod, or updates the request kept of one it runs.
func (w *WholePods) CreatePod(_ context.Context, req *runtimev1.CreatePodRequest) (*runtimev1.PodStatus, error) {
	if err := w.checkNode(req.GetNode()); err != nil {
		return nil, err
	}
	pod := &corev1.Pod{}
	if err := pod.Unmarshal(req.GetPodObject()); err != nil {
		return nil, sdk.InvalidArgument("pod_object", err.Error())
	}
	if pod.UID == "" {
		return nil, sdk.InvalidArgument("pod_object.metadata.uid", "must be set")
	}
	for i, b := range req.GetConfigMaps() {
		if err := (&corev1.ConfigMap{}).Unmarshal(b); err != nil {
			return nil, sdk.InvalidArgument(fmt.Sprintf("config_maps[%d]", i), err.Error())
		}
	}
	for i, b := range req.GetSecrets() {
		if err := (&corev1.Secret{}).Unmarshal(b); err != nil {
			return nil, sdk.InvalidArgument(fmt.Sprintf("secrets[%d]", i), err.Error())
		}
	}
	w.podsMu.Lock()
	defer w.podsMu.Unlock()
	if w.failCreate != nil {
		if _, ok := status.FromError(w.failCreate); ok {
			return nil, w.failCreate
		}
		return nil, status.Error(codes.Unavailable, w.failCreate.Error())
	}
	uid := string(pod.UID)
	calls := w.callsOf(uid)
	node := w.pods[req.GetNode()]
	if node == nil {
		node = map[string]*heldPod{}
		w.pods[req.GetNode()] = node
	}
	if p, ok := node[uid]; ok {
		calls.Updates++
		p.request = req
		return encodeHeld(p, false)
	}
	calls.Creates++
	w.podCount++
	p := &heldPod{
		request: req,
		ref:     &runtimev1.PodRef{Uid: uid, Namespace: pod.Namespace, Name: pod.Name},
		status:  runningStatus(pod, fmt.Sprintf("10.250.%d.%d", w.podCount/250, w.podCount%250+1)),
	}
	node[uid] = p
	w.notify(req.GetNode(), p, false)
	return encodeHeld(p, false)
}

// DeletePod records the grace period, ends the pod's containers and
// forgets the pod (unless deletions are held); deleting an absent pod
// succeeds.
func (w *WholePods) DeletePod(_ context.Context, req *runtimev1.DeletePodRequest) (*runtimev1.DeletePodResponse, error) {
	if err := w.checkNode(req.GetNode()); err != nil {
		return nil, err
	}
	uid := req.GetPod().GetUid()
	if uid == "" {
		return nil, sdk.InvalidArgument("pod.uid", "must be set")
	}
	w.podsMu.Lock()
	defer w.podsMu.Unlock()
	calls := w.callsOf(uid)
	calls.DeleteGraces = append(calls.DeleteGraces, req.GetGracePeriodSeconds())
	p, ok := w.pods[req.GetNode()][uid]
	switch {
	case !ok:
	case w.hold:
		p.deleting = true
	default:
		w.end(req.GetNode(), uid, p)
	}
	return &runtimev1.DeletePodResponse{}, nil
}

// end stops a pod's containers and forgets it; called with podsMu held.
func (w *WholePods) end(node, uid string, p *heldPod) {
	completed(p.status)
	w.notify(node, p, false)
	delete(w.pods[node], uid)
}

// ListPods lists the pods the node holds.
func (w *WholePods) ListPods(_ context.Context, req *runtimev1.ListPodsRequest) (*runtimev1.ListPodsResponse, error) {
	if err := w.checkNode(req.GetNode()); err != nil {
		return nil, err
	}
	w.podsMu.Lock()
	defer w.podsMu.Unlock()
	resp := &runtimev1.ListPodsResponse{}
	for _, p := range w.pods[req.GetNode()] {
		st, err := encodeHeld(p, false)
		if err != nil {
			return nil, err
		}
		resp.Pods = append(resp.Pods, st)
	}
	return resp, nil
}

// WatchPods sends the response headers once the watch is registered, then
// every status change of the node's pods until the call ends.
func (w *WholePods) WatchPods(req *runtimev1.WatchPodsRequest, stream grpc.ServerStreamingServer[runtimev1.PodStatus]) error {
	if err := w.checkNode(req.GetNode()); err != nil {
		return err
	}
	pw := &podWatcher{wake: make(chan struct{}, 1)}
	w.podsMu.Lock()
	w.watchers[pw] = req.GetNode()
	w.podsMu.Unlock()
	defer func() {
		w.podsMu.Lock()
		delete(w.watchers, pw)
		w.podsMu.Unlock()
	}()
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case <-pw.wake:
		}
		for _, st := range pw.take() {
			if err := stream.Send(st); err != nil {
				return err
			}
		}
	}
}

// podWatcher queues statuses for one WatchPods call without limit, so
// that a slow reader never holds up the backend nor loses a change.
type podWatcher struct {
	mu    sync.Mutex
	queue []*runtimev1.PodStatus
	wake  chan struct{}
}

func (pw *podWatcher) push(st *runtimev1.PodStatus) {
	pw.mu.Lock()
	pw.queue = append(pw.queue, st)
	pw.mu.Unlock()
	select {
	case pw.wake <- struct{}{}:
	default:
	}
}

func (pw *podWatcher) take() []*runtimev1.PodStatus {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	out := pw.queue
	pw.queue = nil
	return out
}

// notify tells the node's watchers the pod's status; called with podsMu held.
func (w *WholePods) notify(node string, p *heldPod, lost bool) {
	st, err := encodeHeld(p, lost)
	if err != nil {
		return
	}
	for pw, n := range w.watchers {
		if n == node {
			pw.push(st)
		}
	}
}

func (w *WholePods) callsOf(uid string) *PodCalls {
	c, ok := w.calls[uid]
	if !ok {
		c = &PodCalls{}
		w.calls[uid] = c
	}
	return c
}

func encodeHeld(p *heldPod, lost bool) (*runtimev1.PodStatus, error) {
	data, err := p.status.Marshal()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode pod status: %v", err)
	}
	return &runtimev1.PodStatus{Pod: p.ref, Status: data, Lost: lost}, nil
}

// runningStatus is the status of a pod the moment it runs: its init
// containers completed, its app containers running and ready.
func runningStatus(pod *corev1.Pod, podIP string) *corev1.PodStatus {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	started := true
	st := &corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    WholePodsHostIP,
		HostIPs:   []corev1.HostIP{{IP: WholePodsHostIP}},
		PodIP:     podIP,
		PodIPs:    []corev1.PodIP{{IP: podIP}},
		StartTime: &now,
		QOSClass:  corev1.PodQOSBestEffort,
	}
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for _, ctr := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{
			Name: ctr.Name, Image: ctr.Image, ImageID: ctr.Image, Ready: true,
			ContainerID: fmt.Sprintf("memory://%s/%s", pod.UID, ctr.Name),
			State:       corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}},
		})
	}
	for _, ctr := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: ctr.Name, Image: ctr.Image, ImageID: ctr.Image, Ready: true, Started: &started,
			ContainerID: fmt.Sprintf("memory://%s/%s", pod.UID, ctr.Name),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return st
}

// completed ends every running container with 0, as containers that stop
// on SIGTERM do, and the pod with them.
func completed(st *corev1.PodStatus) {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	started := false
	for i := range st.ContainerStatuses {
		cs := &st.ContainerStatuses[i]
		if cs.State.Running != nil {
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				Reason: "Completed", StartedAt: cs.State.Running.StartedAt, FinishedAt: now, ContainerID: cs.ContainerID,
			}}
		}
		cs.Ready, cs.Started = false, &started
	}
	st.Phase = corev1.PodSucceeded
	for i := range st.Conditions {
		if t := st.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			st.Conditions[i].Status, st.Conditions[i].Reason, st.Conditions[i].LastTransitionTime = corev1.ConditionFalse, "PodCompleted", now
		}
	}
}

// RecordEvent sends an event about the pod to the node's WatchPodEvents
// callers, as a member cluster's kubelet would record one.
func (w *WholePods) RecordEvent(node, uid, eventType, reason, message string) {
	w.podsMu.Lock()
	defer w.podsMu.Unlock()
	ev := &runtimev1.PodEvent{Pod: &runtimev1.PodRef{Uid: uid}, Type: eventType, Reason: reason, Message: message, Count: 1, Source: "memory-kubelet"}
	if p, ok := w.pods[node][uid]; ok {
		ev.Pod = p.ref
	}
	for ch, n := range w.eventSubs {
		if n == node {
			select {
			case ch <- ev:
			default: // a caller this far behind loses events, as with a real backend
			}
		}
	}
}

// WatchPodEvents streams what RecordEvent records for the node.
func (w *WholePods) WatchPodEvents(req *runtimev1.WatchPodEventsRequest, stream grpc.ServerStreamingServer[runtimev1.PodEvent]) error {
	if err := w.checkNode(req.GetNode()); err != nil {
		return err
	}
	ch := make(chan *runtimev1.PodEvent, 100)
	w.podsMu.Lock()
	w.eventSubs[ch] = req.GetNode()
	w.podsMu.Unlock()
	defer func() {
		w.podsMu.Lock()
		delete(w.eventSubs, ch)
		w.podsMu.Unlock()
	}()
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case ev := <-ch:
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}
