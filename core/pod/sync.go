package pod

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// notListedRetry is how soon a pod is looked at again while the runtime has
// not been listed yet: until then the agent does not know what runs.
const notListedRetry = 200 * time.Millisecond

// Sync brings one pod one step closer to its spec and reports its status.
// It returns how soon to look at the pod again, if it waits for something.
func (c *Steps) Sync(ctx context.Context, uid types.UID, pod *corev1.Pod) (time.Duration, error) {
	if !c.state.listed() {
		return notListedRetry, nil
	}
	rt := c.state.get(uid)
	switch {
	case pod == nil && rt == nil:
		c.forget(uid)
		return 0, nil
	case pod == nil:
		// Gone from the API server without us (force-deleted, or deleted
		// while the agent was down): nothing may keep running.
		return 0, c.removeSandbox(ctx, uid)
	case pod.DeletionTimestamp != nil:
		c.terminations.start(ctx, pod, rt)
		return 0, nil
	case isTerminal(pod):
		c.objects.Release(uid)
		if allExited(pod, rt) {
			// The phase is final, but a container's exit may be told twice,
			// the second time with what its record adds (its termination
			// message): the status takes that in.
			c.messages.read(ctx, pod, c.state.get(pod.UID))
			c.report(pod)
			// Nothing runs any more: its address goes back to the node, as
			// the kubelet stops a finished pod's sandbox (a node runs out of
			// addresses otherwise with many finished Jobs). A deletion
			// meanwhile ends this sync: its own releases the rest.
			if err := c.network.release(ctx, pod); err != nil && ctx.Err() == nil {
				return 0, err
			}
		}
		return 0, nil
	}
	if msg := unsupported(pod, c.network != nil, c.volumes.enabled()); msg != "" {
		for _, ctr := range allContainers(pod) {
			c.waiting.set(uid, ctr.Name, &waitReason{"CreateContainerConfigError", msg})
		}
		c.report(pod)
		return 0, nil
	}
	var pulled map[string]pullResult
	if rt == nil || rt.sandbox == nil {
		var err error
		pulled, err = c.createSandbox(ctx, pod)
		if err != nil && ctx.Err() != nil {
			return 0, nil
		}
		if err != nil {
			c.report(pod)
			return 0, err
		}
	}
	if err := c.killUnhealthy(ctx, pod); err != nil && ctx.Err() == nil {
		return 0, err
	}
	if err := c.network.attach(ctx, pod); err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		c.report(pod)
		return 0, err
	}
	var refresh time.Duration
	if c.volumes.enabled() {
		var err error
		if refresh, err = c.volumes.make(ctx, pod); err != nil {
			c.report(pod)
			if errors.Is(err, errVolumeWaits) {
				return 0, nil // the object's watch re-queues the pod
			}
			return 0, err
		}
	}
	retry, err := c.syncContainers(ctx, pod, pulled)
	if refresh > 0 && (retry == 0 || refresh < retry) {
		retry = refresh // a token is due
	}
	if ctx.Err() != nil {
		// Deleted meanwhile (the deletion re-queued it: the next sync
		// terminates it), or the agent is stopping.
		return 0, nil
	}
	c.messages.read(ctx, pod, c.state.get(pod.UID))
	c.report(pod)
	return retry, err
}

// syncContainers runs the init containers one after the other, each to its
// success, and then the app containers.
func (c *Steps) syncContainers(ctx context.Context, pod *corev1.Pod, pulled map[string]pullResult) (time.Duration, error) {
	if initialized, wait, err := c.syncInitContainers(ctx, pod, pulled); !initialized || err != nil {
		return wait, err
	}
	var retry time.Duration
	for i := range pod.Spec.Containers {
		ctr := &pod.Spec.Containers[i]
		wait, err := c.syncContainer(ctx, pod, ctr, pod.Spec.RestartPolicy, pullOf(pulled, ctr.Name))
		if err != nil {
			return 0, err
		}
		if wait > 0 && (retry == 0 || wait < retry) {
			retry = wait
		}
	}
	return retry, nil
}

// createSandbox runs the pod's sandbox and meanwhile pulls the images of
// the containers that start first (the first init container, or else every
// app container): neither waits for the other.
func (c *Steps) createSandbox(ctx context.Context, pod *corev1.Pod) (map[string]pullResult, error) {
	first := pod.Spec.Containers
	if len(pod.Spec.InitContainers) > 0 {
		first = pod.Spec.InitContainers[:1]
	}
	pulled := make(map[string]pullResult, len(first))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range first {
			var r pullResult
			r.wait, r.err = c.images.pull(ctx, pod, &first[i])
			pulled[first[i].Name] = r
		}
	}()
	err := c.runSandbox(ctx, pod)
	<-done
	if err != nil {
		// Set after the pulls' reasons: the sandbox is what the pod waits for.
		for _, ctr := range allContainers(pod) {
			c.waiting.set(pod.UID, ctr.Name, &waitReason{"ContainerCreating", "create pod sandbox: " + status.Convert(err).Message()})
		}
		return nil, err
	}
	return pulled, nil
}

func (c *Steps) runSandbox(ctx context.Context, pod *corev1.Pod) error {
	encoded, err := pod.Marshal()
	if err != nil {
		return fmt.Errorf("encode pod: %w", err)
	}
	sb, err := c.runtime.RunSandbox(ctx, &runtimev1.RunSandboxRequest{
		Node:        c.node,
		Pod:         podRef(pod),
		HostNetwork: pod.Spec.HostNetwork,
		Hostname:    hostname(pod),
		PodObject:   encoded,
		Dns:         c.spec.podDNS(pod),
	})
	if err != nil {
		if ctx.Err() == nil {
			c.events.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %s", status.Convert(err).Message())
		}
		return fmt.Errorf("run sandbox of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.state.setSandbox(sb)
	return nil
}

// syncContainer starts the container if it never ran, or restarts it as
// policy says, after the kubelet's back-off. pulled is the pull of its
// image already done in this sync, if any.
func (c *Steps) syncContainer(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, policy corev1.RestartPolicy, pulled *pullResult) (time.Duration, error) {
	rt := c.state.get(pod.UID)
	last := rt.latest(ctr.Name)
	var attempt uint32
	switch {
	case last == nil:
		attempt = 0
	case last.State == runtimev1.ContainerState_CONTAINER_STATE_CREATED:
		// Recorded but never started: a start cut short (the plugin was
		// killed in the middle of it). The same attempt, asked again, starts.
		attempt = last.Attempt
	case last.State != runtimev1.ContainerState_CONTAINER_STATE_EXITED:
		c.waiting.set(pod.UID, ctr.Name, nil)
		return 0, nil
	case !shouldRestart(policy, last.ExitCode):
		return 0, nil
	default:
		key := backoffKey(pod.UID, ctr.Name)
		finished := time.Unix(0, last.FinishedAtUnixNano)
		if c.crashBackoff.IsInBackOffSince(key, finished) {
			delay := c.crashBackoff.Get(key)
			c.waiting.set(pod.UID, ctr.Name, &waitReason{"CrashLoopBackOff",
				fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", delay, ctr.Name, podName(pod))})
			containerEvent(c.events, pod, ctr, "", corev1.EventTypeWarning, eventBackOff, "Back-off restarting failed container %s in pod %s", ctr.Name, podName(pod))
			return time.Until(finished.Add(delay)) + 10*time.Millisecond, nil
		}
		c.crashBackoff.Next(key, finished)
		attempt = last.Attempt + 1
	}
	return c.startContainer(ctx, pod, ctr, attempt, pulled)
}

func (c *Steps) removeAttemptsBefore(ctx context.Context, uid types.UID, name string, keep uint32) {
	_, err := c.runtime.RemoveContainer(ctx, &runtimev1.RemoveContainerRequest{Node: c.node, PodUid: string(uid), Name: name, KeepAttempt: keep})
	if err != nil {
		c.log.Warn("remove old container attempts", "pod_uid", uid, "container", name, "err", err)
		return
	}
	c.state.dropAttemptsBefore(uid, name, keep)
}

func (c *Steps) removeSandbox(ctx context.Context, uid types.UID) error {
	if err := c.network.detach(ctx, uid); err != nil {
		return err
	}
	if _, err := c.runtime.RemoveSandbox(ctx, &runtimev1.RemoveSandboxRequest{Node: c.node, PodUid: string(uid)}); err != nil {
		return fmt.Errorf("remove sandbox of pod %s: %w", uid, err)
	}
	c.forget(uid)
	return nil
}

func shouldRestart(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return true
	}
}

func isTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func podRef(pod *corev1.Pod) *runtimev1.PodRef {
	return &runtimev1.PodRef{Uid: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name}
}

func hostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return pod.Name
}

// allContainers lists the pod's init containers, then its app containers.
func allContainers(pod *corev1.Pod) []corev1.Container {
	return append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
}

// pullOf is the pull already done for a container in this sync, or nil.
func pullOf(pulled map[string]pullResult, name string) *pullResult {
	if r, ok := pulled[name]; ok {
		return &r
	}
	return nil
}

// allExited says whether the runtime still holds, exited, every container
// the pod's status says has run: a final status can be computed again from
// that without losing anything.
func allExited(pod *corev1.Pod, rt *podRuntime) bool {
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if cs.ContainerID == "" {
			continue
		}
		last := rt.latest(cs.Name)
		if last == nil || last.State != runtimev1.ContainerState_CONTAINER_STATE_EXITED {
			return false
		}
	}
	return rt != nil
}
