package pod

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// notListedRetry is how soon a pod is looked at again while the runtime has
// not been listed yet: until then the agent does not know what runs.
const notListedRetry = 200 * time.Millisecond

// sync brings one pod one step closer to its spec and reports its status.
// It returns how soon to look at the pod again, if it waits for something.
func (c *Controller) sync(ctx context.Context, uid types.UID) (time.Duration, error) {
	if !c.state.listed() {
		return notListedRetry, nil
	}
	pod := c.podByUID(uid)
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
		c.startTermination(ctx, pod, rt)
		return 0, nil
	case isTerminal(pod):
		return 0, nil
	}
	if msg := unsupported(pod); msg != "" {
		for _, ctr := range pod.Spec.Containers {
			c.setWaiting(uid, ctr.Name, &waitReason{"CreateContainerConfigError", msg})
		}
		c.report(pod)
		return 0, nil
	}

	if rt == nil || rt.sandbox == nil {
		if err := c.runSandbox(ctx, pod); err != nil {
			c.report(pod)
			return 0, err
		}
	}
	var retry time.Duration
	for i := range pod.Spec.Containers {
		wait, err := c.syncContainer(ctx, pod, &pod.Spec.Containers[i])
		if err != nil {
			c.report(pod)
			return 0, err
		}
		if wait > 0 && (retry == 0 || wait < retry) {
			retry = wait
		}
	}
	c.report(pod)
	return retry, nil
}

func (c *Controller) runSandbox(ctx context.Context, pod *corev1.Pod) error {
	encoded, err := pod.Marshal()
	if err != nil {
		return fmt.Errorf("encode pod: %w", err)
	}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	sb, err := c.runtime.RunSandbox(callCtx, &runtimev1.RunSandboxRequest{
		Node:        c.node,
		Pod:         podRef(pod),
		HostNetwork: pod.Spec.HostNetwork,
		Hostname:    hostname(pod),
		PodObject:   encoded,
	})
	if err != nil {
		for _, ctr := range pod.Spec.Containers {
			c.setWaiting(pod.UID, ctr.Name, &waitReason{"ContainerCreating", "create pod sandbox: " + status.Convert(err).Message()})
		}
		c.events.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %s", status.Convert(err).Message())
		return fmt.Errorf("run sandbox of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.state.setSandbox(sb)
	return nil
}

// syncContainer starts the container if it never ran, or restarts it as the
// pod's restart policy says, after the kubelet's back-off.
func (c *Controller) syncContainer(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container) (time.Duration, error) {
	rt := c.state.get(pod.UID)
	last := rt.latest(ctr.Name)
	var attempt uint32
	switch {
	case last == nil:
		attempt = 0
	case last.State != runtimev1.ContainerState_CONTAINER_STATE_EXITED:
		c.setWaiting(pod.UID, ctr.Name, nil)
		return 0, nil
	case !shouldRestart(pod.Spec.RestartPolicy, last.ExitCode):
		return 0, nil
	default:
		key := backoffKey(pod.UID, ctr.Name)
		finished := time.Unix(0, last.FinishedAtUnixNano)
		if c.crashBackoff.IsInBackOffSince(key, finished) {
			delay := c.crashBackoff.Get(key)
			c.setWaiting(pod.UID, ctr.Name, &waitReason{"CrashLoopBackOff",
				fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, ctr.Name, pod.Name, pod.Namespace, pod.UID)})
			c.events.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", ctr.Name, pod.Name, pod.Namespace, pod.UID)
			return time.Until(finished.Add(delay)) + 10*time.Millisecond, nil
		}
		c.crashBackoff.Next(key, finished)
		attempt = last.Attempt + 1
	}

	if wait, err := c.pullImage(ctx, pod, ctr); wait > 0 || err != nil {
		return wait, err
	}
	spec, err := containerSpec(pod, ctr)
	if err != nil {
		c.setWaiting(pod.UID, ctr.Name, &waitReason{"CreateContainerConfigError", err.Error()})
		return 0, nil
	}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	st, err := c.runtime.StartContainer(callCtx, &runtimev1.StartContainerRequest{
		Node: c.node, Pod: podRef(pod), Container: spec, Attempt: attempt,
	})
	if err != nil {
		msg := status.Convert(err).Message()
		if status.Code(err) == codes.Unavailable {
			return 0, fmt.Errorf("start container %s of pod %s/%s: %w", ctr.Name, pod.Namespace, pod.Name, err)
		}
		c.setWaiting(pod.UID, ctr.Name, &waitReason{"CreateContainerError", msg})
		c.events.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %s", msg)
		return c.crashBackoff.Get(backoffKey(pod.UID, ctr.Name)) + time.Second, nil
	}
	c.state.setContainer(st)
	c.setWaiting(pod.UID, ctr.Name, nil)
	c.events.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", ctr.Name)
	if attempt > 1 {
		// Keep the attempt before this one for `kubectl logs --previous`.
		c.removeAttemptsBefore(ctx, pod.UID, ctr.Name, attempt-1)
	}
	return 0, nil
}

// pullImage makes the container's image present, as its pull policy says.
func (c *Controller) pullImage(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container) (time.Duration, error) {
	key := backoffKey(pod.UID, "image/"+ctr.Image)
	if c.pullBackoff.IsInBackOffSinceUpdate(key, time.Now()) {
		w, _ := c.waitingOf(pod.UID, ctr.Name)
		c.setWaiting(pod.UID, ctr.Name, &waitReason{"ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: %s", ctr.Image, w.message)})
		return c.pullBackoff.Get(key), nil
	}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := c.runtime.PullImage(callCtx, &runtimev1.PullImageRequest{
		Node:   c.node,
		Image:  ctr.Image,
		Always: ctr.ImagePullPolicy == corev1.PullAlways,
		Never:  ctr.ImagePullPolicy == corev1.PullNever,
	})
	if err == nil {
		c.pullBackoff.Reset(key)
		return 0, nil
	}
	msg := status.Convert(err).Message()
	reason := "ErrImagePull"
	if ctr.ImagePullPolicy == corev1.PullNever {
		reason = "ErrImageNeverPull"
	}
	c.setWaiting(pod.UID, ctr.Name, &waitReason{reason, msg})
	c.events.Eventf(pod, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %s", ctr.Image, msg)
	c.pullBackoff.Next(key, time.Now())
	return c.pullBackoff.Get(key), nil
}

func (c *Controller) removeAttemptsBefore(ctx context.Context, uid types.UID, name string, keep uint32) {
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := c.runtime.RemoveContainer(callCtx, &runtimev1.RemoveContainerRequest{Node: c.node, PodUid: string(uid), Name: name, KeepAttempt: keep})
	if err != nil {
		c.log.Warn("remove old container attempts", "pod_uid", uid, "container", name, "err", err)
		return
	}
	c.state.dropAttemptsBefore(uid, name, keep)
}

func (c *Controller) removeSandbox(ctx context.Context, uid types.UID) error {
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := c.runtime.RemoveSandbox(callCtx, &runtimev1.RemoveSandboxRequest{Node: c.node, PodUid: string(uid)}); err != nil {
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
