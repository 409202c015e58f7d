package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// The kit's side of the pod-level calls: pods built and encoded as the
// agent hands them over (core/podproxy), and waits on what the backend
// reports of them.

// podNamespace is the namespace of every pod, ConfigMap and Secret the
// whole-pod checks hand over.
const podNamespace = "conformance"

// podPollInterval is how often a wait for a whole pod's state lists pods.
const podPollInterval = 250 * time.Millisecond

// cleanupGrace is the grace period of the deletions that end a check: long
// enough for a member's kubelet to stop the pod before it is forgotten.
const cleanupGrace = 1

// newName is a fresh name for an object of the check: the check's name and
// a random suffix, a valid DNS label.
func (p *probe) newName() string {
	return p.check.Name + "-" + newUID()[:8]
}

// wholePod is a pod as the agent hands it over: bound to the node, with the
// defaults the API server gives every pod, a fresh random UID and a fresh
// name, running containers.
func (p *probe) wholePod(containers ...corev1.Container) *corev1.Pod {
	if p.image() == "" {
		p.Fatalf("not run: no image given to run pods with")
	}
	grace := int64(30)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.newName(), Namespace: podNamespace, UID: types.UID(newUID()),
			ResourceVersion:   "1",
			CreationTimestamp: metav1.NewTime(time.Now().Truncate(time.Second)),
			Labels:            map[string]string{"fedlet.io/conformance-check": p.check.Name},
		},
		Spec: corev1.PodSpec{
			NodeName:                      p.node(),
			Containers:                    containers,
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace,
			DNSPolicy:                     corev1.DNSClusterFirst,
			SchedulerName:                 corev1.DefaultSchedulerName,
			SecurityContext:               &corev1.PodSecurityContext{},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort},
	}
}

// shell is a container of the kit's image running `sh -c script`, with the
// API server's defaults.
func (p *probe) shell(name, script string) corev1.Container {
	return corev1.Container{
		Name:                     name,
		Image:                    p.image(),
		Command:                  []string{"sh", "-c", script},
		ImagePullPolicy:          corev1.PullIfNotPresent,
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
}

func podRef(pod *corev1.Pod) *runtimev1.PodRef {
	return &runtimev1.PodRef{Uid: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name}
}

// createRequest encodes the pod and its objects as the agent does:
// Kubernetes protobuf of each, without managed fields.
func (p *probe) createRequest(pod *corev1.Pod, cms []*corev1.ConfigMap, secrets []*corev1.Secret) *runtimev1.CreatePodRequest {
	raw, err := pod.Marshal()
	if err != nil {
		p.Fatalf("encode pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	req := &runtimev1.CreatePodRequest{Node: p.node(), PodObject: raw}
	for _, cm := range cms {
		b, err := cm.Marshal()
		if err != nil {
			p.Fatalf("encode ConfigMap %s: %v", cm.Name, err)
		}
		req.ConfigMaps = append(req.ConfigMaps, b)
	}
	for _, s := range secrets {
		b, err := s.Marshal()
		if err != nil {
			p.Fatalf("encode Secret %s: %v", s.Name, err)
		}
		req.Secrets = append(req.Secrets, b)
	}
	return req
}

// createPod hands the pod over with its objects, and deletes it when the
// check ends. Unavailable (the backend cannot do it right now: a namespace
// being made or going away) is tried again until the timeout, as the
// agent does; anything else fails the check.
func (p *probe) createPod(pod *corev1.Pod, cms []*corev1.ConfigMap, secrets []*corev1.Secret) *runtimev1.PodStatus {
	req := p.createRequest(pod, cms, secrets)
	p.deleteWhenDone(podRef(pod))
	return p.createWith(req, pod)
}

func (p *probe) createWith(req *runtimev1.CreatePodRequest, pod *corev1.Pod) *runtimev1.PodStatus {
	deadline := time.Now().Add(p.suite.cfg.Timeout)
	for {
		ctx, cancel := p.call()
		st, err := p.rt().CreatePod(ctx, req)
		cancel()
		switch {
		case err == nil:
			if got := st.GetPod(); got.GetUid() != string(pod.UID) || got.GetNamespace() != pod.Namespace || got.GetName() != pod.Name {
				p.Errorf("CreatePod of pod %s/%s (%s) answered for pod %v: want its UID, namespace and name", pod.Namespace, pod.Name, pod.UID, got)
			}
			if _, err := decodePodStatus(st); err != nil {
				p.Errorf("CreatePod of pod %s/%s answered a status that is not a core/v1 PodStatus in protobuf: %v", pod.Namespace, pod.Name, err)
			}
			return st
		case status.Code(err) != codes.Unavailable || time.Now().After(deadline):
			p.Fatalf("CreatePod of pod %s/%s (%s): %v", pod.Namespace, pod.Name, pod.UID, err)
		}
		p.sleep(time.Second)
	}
}

// deleteWhenDone deletes the pod when the check ends, and waits until
// ListPods no longer lists it: removing what a check made is part of the
// protocol too.
func (p *probe) deleteWhenDone(ref *runtimev1.PodRef) {
	p.requirePlugin()
	p.cleanup(func(ctx context.Context) error {
		rt := p.suite.plugin.client()
		for {
			_, err := rt.DeletePod(ctx, &runtimev1.DeletePodRequest{Node: p.node(), Pod: ref, GracePeriodSeconds: cleanupGrace})
			if err == nil {
				break
			}
			if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
				return fmt.Errorf("DeletePod of pod %s/%s (%s): %w", ref.GetNamespace(), ref.GetName(), ref.GetUid(), err)
			}
			time.Sleep(time.Second)
		}
		for {
			listed, err := listedIn(ctx, rt, p.node(), ref.GetUid())
			if err == nil && len(listed) == 0 {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("pod %s/%s (%s) still listed by ListPods after DeletePod (%v)", ref.GetNamespace(), ref.GetName(), ref.GetUid(), err)
			}
			time.Sleep(podPollInterval)
		}
	})
}

// deletePod asks for the pod's deletion with a grace period.
func (p *probe) deletePod(ref *runtimev1.PodRef, grace int64) {
	ctx, cancel := p.call()
	defer cancel()
	if _, err := p.rt().DeletePod(ctx, &runtimev1.DeletePodRequest{Node: p.node(), Pod: ref, GracePeriodSeconds: grace}); err != nil {
		p.Fatalf("DeletePod of pod %s/%s (%s) with grace period %ds: %v", ref.GetNamespace(), ref.GetName(), ref.GetUid(), grace, err)
	}
}

// listedIn returns the entries of ListPods for the pod UID.
func listedIn(ctx context.Context, rt runtimev1.RuntimeClient, node, uid string) ([]*runtimev1.PodStatus, error) {
	resp, err := rt.ListPods(ctx, &runtimev1.ListPodsRequest{Node: node})
	if err != nil {
		return nil, err
	}
	var out []*runtimev1.PodStatus
	for _, ps := range resp.GetPods() {
		if ps.GetPod().GetUid() == uid {
			out = append(out, ps)
		}
	}
	return out, nil
}

// podsListed returns the entries of ListPods for the pod UID: one for a pod
// the backend runs, none for one it does not.
func (p *probe) podsListed(uid string) []*runtimev1.PodStatus {
	ctx, cancel := p.call()
	defer cancel()
	out, err := listedIn(ctx, p.rt(), p.node(), uid)
	if err != nil {
		p.Fatalf("ListPods: %v", err)
	}
	return out
}

// podListed returns the pod's one entry in ListPods, nil when it has
// none, and fails the check when it has several.
func (p *probe) podListed(pod *corev1.Pod) *runtimev1.PodStatus {
	entries := p.podsListed(string(pod.UID))
	switch len(entries) {
	case 0:
		return nil
	case 1:
	default:
		p.Fatalf("ListPods lists pod %s/%s (%s) %d times, want once", pod.Namespace, pod.Name, pod.UID, len(entries))
	}
	ps := entries[0]
	if got := ps.GetPod(); got.GetNamespace() != pod.Namespace || got.GetName() != pod.Name {
		p.Errorf("ListPods names pod %s as %s/%s, want %s/%s", pod.UID, got.GetNamespace(), got.GetName(), pod.Namespace, pod.Name)
	}
	if ps.GetLost() {
		p.Errorf("ListPods lists pod %s/%s as lost: lost is for a pod the backend no longer has", pod.Namespace, pod.Name)
	}
	return ps
}

// waitPod lists pods until the pod's status is as ok wants, and returns it.
func (p *probe) waitPod(pod *corev1.Pod, what string, ok func(*corev1.PodStatus) bool) *corev1.PodStatus {
	deadline := time.Now().Add(p.suite.cfg.Timeout)
	var last *corev1.PodStatus
	for {
		if ps := p.podListed(pod); ps != nil {
			st, err := decodePodStatus(ps)
			if err != nil {
				p.Fatalf("ListPods: the status of pod %s/%s is not a core/v1 PodStatus in protobuf: %v", pod.Namespace, pod.Name, err)
			}
			if ok(st) {
				return st
			}
			last = st
		}
		if time.Now().After(deadline) {
			p.Fatalf("pod %s/%s not %s in ListPods within %v; last listed: %s", pod.Namespace, pod.Name, what, p.suite.cfg.Timeout, describePod(last))
		}
		p.sleep(podPollInterval)
	}
}

// waitRunning waits until ListPods reports the pod Running with a pod IP
// and every container running.
func (p *probe) waitRunning(pod *corev1.Pod) *corev1.PodStatus {
	return p.waitPod(pod, "Running with a pod IP and every container running", func(st *corev1.PodStatus) bool {
		return runningWithIP(pod, st)
	})
}

func runningWithIP(pod *corev1.Pod, st *corev1.PodStatus) bool {
	if st.Phase != corev1.PodRunning || st.PodIP == "" || len(st.ContainerStatuses) != len(pod.Spec.Containers) {
		return false
	}
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running == nil {
			return false
		}
	}
	return true
}

// containerStatus is the status of the named container, nil when the
// status has none.
func containerStatus(st *corev1.PodStatus, name string) *corev1.ContainerStatus {
	for i := range st.ContainerStatuses {
		if st.ContainerStatuses[i].Name == name {
			return &st.ContainerStatuses[i]
		}
	}
	return nil
}

func decodePodStatus(ps *runtimev1.PodStatus) (*corev1.PodStatus, error) {
	st := &corev1.PodStatus{}
	if err := st.Unmarshal(ps.GetStatus()); err != nil {
		return nil, err
	}
	return st, nil
}

// describePod is a pod status, short, for failure messages.
func describePod(st *corev1.PodStatus) string {
	if st == nil {
		return "not listed"
	}
	s := fmt.Sprintf("phase %s", st.Phase)
	if st.PodIP != "" {
		s += ", pod IP " + st.PodIP
	}
	if st.Reason != "" || st.Message != "" {
		s += fmt.Sprintf(", reason %q message %q", st.Reason, st.Message)
	}
	for _, cs := range st.ContainerStatuses {
		s += fmt.Sprintf(", container %s %s (restarts %d, id %q)", cs.Name, describeState(cs.State), cs.RestartCount, cs.ContainerID)
	}
	return s
}

func describeState(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated (exit code %d, %s)", s.Terminated.ExitCode, s.Terminated.Reason)
	case s.Waiting != nil:
		return fmt.Sprintf("waiting (%s: %s)", s.Waiting.Reason, s.Waiting.Message)
	}
	return "in no state"
}

// podWatch follows WatchPods of the node for the rest of the check.
type podWatch struct {
	p      *probe
	notify chan struct{}

	mu  sync.Mutex
	all []*runtimev1.PodStatus
	err error // why the stream ended; nil while it runs
}

// watchPods opens WatchPods and waits for its response headers: the
// protocol's promise that the watch is registered. The watch ends with the
// check.
func (p *probe) watchPods() *podWatch {
	ctx, cancel := context.WithCancel(p.ctx)
	stream, err := p.rt().WatchPods(ctx, &runtimev1.WatchPodsRequest{Node: p.node()})
	if err != nil {
		cancel()
		p.Fatalf("WatchPods: %v", err)
	}
	w := &podWatch{p: p, notify: make(chan struct{}, 1)}
	headers := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		md, err := stream.Header()
		if err == nil && md == nil {
			// The call ended before any headers: Recv says why.
			_, err = stream.Recv()
			if err == nil || errors.Is(err, io.EOF) {
				err = errors.New("the stream ended before its response headers")
			}
		}
		headers <- err
		if err != nil {
			w.end(err)
			return
		}
		for {
			ps, err := stream.Recv()
			if err != nil {
				w.end(err)
				return
			}
			w.add(ps)
		}
	}()
	p.cleanup(func(context.Context) error {
		cancel()
		<-done
		return nil
	})
	timer := time.NewTimer(p.suite.cfg.Timeout)
	defer timer.Stop()
	select {
	case err := <-headers:
		if err != nil {
			p.Fatalf("WatchPods: %v", err)
		}
	case <-timer.C:
		p.Fatalf("WatchPods sent no response headers within %v: the plugin must send them once the watch is registered", p.suite.cfg.Timeout)
	}
	return w
}

func (w *podWatch) add(ps *runtimev1.PodStatus) {
	w.mu.Lock()
	w.all = append(w.all, ps)
	w.mu.Unlock()
	w.wake()
}

func (w *podWatch) end(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	w.wake()
}

func (w *podWatch) wake() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// of returns every status the watch sent of the pod UID so far.
func (w *podWatch) of(uid string) []*runtimev1.PodStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*runtimev1.PodStatus
	for _, ps := range w.all {
		if ps.GetPod().GetUid() == uid {
			out = append(out, ps)
		}
	}
	return out
}

// waitFor waits until the watch sends a status of the pod that ok accepts,
// and returns it.
func (w *podWatch) waitFor(pod *corev1.Pod, what string, ok func(*corev1.PodStatus) bool) *corev1.PodStatus {
	p := w.p
	timer := time.NewTimer(p.suite.cfg.Timeout)
	defer timer.Stop()
	next := 0
	var last *corev1.PodStatus
	for {
		w.mu.Lock()
		batch, err := w.all[next:], w.err
		next = len(w.all)
		w.mu.Unlock()
		for _, ps := range batch {
			if ps.GetPod().GetUid() != string(pod.UID) {
				continue
			}
			st, derr := decodePodStatus(ps)
			if derr != nil {
				p.Fatalf("WatchPods sent a status of pod %s/%s that is not a core/v1 PodStatus in protobuf: %v", pod.Namespace, pod.Name, derr)
			}
			if ok(st) {
				return st
			}
			last = st
		}
		if err != nil {
			p.Fatalf("WatchPods ended before it reported pod %s/%s %s (last status of it: %s): %v", pod.Namespace, pod.Name, what, describePod(last), err)
		}
		select {
		case <-w.notify:
		case <-timer.C:
			p.Fatalf("WatchPods did not report pod %s/%s %s within %v; last status of it: %s", pod.Namespace, pod.Name, what, p.suite.cfg.Timeout, describePod(last))
		case <-p.ctx.Done():
			p.Fatalf("interrupted: %v", p.ctx.Err())
		}
	}
}

// sameContainers fails the check unless the containers of now are those
// of before: the same IDs and start times, no restart. What a repeated
// call must not change.
func (p *probe) sameContainers(what string, before, now *corev1.PodStatus) {
	for _, b := range before.ContainerStatuses {
		n := containerStatus(now, b.Name)
		switch {
		case b.State.Running == nil:
			p.Fatalf("%s: container %s was not running before (a bug in the kit)", what, b.Name)
		case n == nil:
			p.Errorf("%s: container %s is no longer reported", what, b.Name)
		case n.ContainerID != b.ContainerID || n.RestartCount != b.RestartCount || n.State.Running == nil ||
			!n.State.Running.StartedAt.Equal(&b.State.Running.StartedAt):
			p.Errorf("%s: container %s is %s (restarts %d, id %q); before it was running since %v (restarts %d, id %q): it was started again",
				what, b.Name, describeState(n.State), n.RestartCount, n.ContainerID, b.State.Running.StartedAt, b.RestartCount, b.ContainerID)
		}
	}
}

// lines is what a container prints, one line each.
func lines(ss ...string) string {
	return strings.Join(ss, "\n") + "\n"
}
