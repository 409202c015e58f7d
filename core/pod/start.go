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

// reasonStartError is the runtime's reason for an attempt that runc refused
// to start: it exists, and has exited at once.
const reasonStartError = "StartError"

// startContainer starts one attempt of a container as the kubelet does:
// its image, its configuration (the environment may wait for a ConfigMap
// or Secret), the start itself, then its postStart hook. It returns how
// soon to try again when the container must wait.
func (c *Steps) startContainer(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, attempt uint32, pulled *pullResult) (time.Duration, error) {
	if pulled == nil {
		wait, err := c.images.pull(ctx, pod, ctr)
		pulled = &pullResult{wait, err}
	}
	if pulled.wait > 0 || pulled.err != nil {
		return pulled.wait, pulled.err
	}
	spec, err := c.spec.build(ctx, pod, ctr)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		c.waiting.set(pod.UID, ctr.Name, &waitReason{"CreateContainerConfigError", err.Error()})
		containerEvent(c.events, pod, ctr, "", corev1.EventTypeWarning, eventFailed, "Error: %s", err.Error())
		// A watch re-queues the pod when a missing object appears; this is
		// the kubelet's periodic retry behind it.
		key := backoffKey(pod.UID, "config/"+ctr.Name)
		c.configBackoff.Next(key, time.Now())
		return c.configBackoff.Get(key), nil
	}
	c.configBackoff.Reset(backoffKey(pod.UID, "config/"+ctr.Name))

	st, err := c.runtime.StartContainer(ctx, &runtimev1.StartContainerRequest{
		Node: c.node, Pod: podRef(pod), Container: spec, Attempt: attempt,
	})
	if err == nil {
		err = answersFor(st, pod.UID, ctr.Name, attempt)
	}
	if err != nil {
		msg := status.Convert(err).Message()
		if status.Code(err) == codes.Unavailable || ctx.Err() != nil {
			return 0, fmt.Errorf("start container %s of pod %s/%s: %w", ctr.Name, pod.Namespace, pod.Name, err)
		}
		c.waiting.set(pod.UID, ctr.Name, &waitReason{startErrorReason(err), msg})
		containerEvent(c.events, pod, ctr, "", corev1.EventTypeWarning, eventFailed, "Error: %s", msg)
		return c.crashBackoff.Get(backoffKey(pod.UID, ctr.Name)) + time.Second, nil
	}
	c.state.setContainer(st)
	c.waiting.set(pod.UID, ctr.Name, nil)
	containerEvent(c.events, pod, ctr, st.Id, corev1.EventTypeNormal, eventCreated, "Container created")
	if st.State == runtimev1.ContainerState_CONTAINER_STATE_EXITED && st.Reason == reasonStartError {
		containerEvent(c.events, pod, ctr, st.Id, corev1.EventTypeWarning, eventFailed, "Error: %s", st.Message)
	} else {
		containerEvent(c.events, pod, ctr, st.Id, corev1.EventTypeNormal, eventStarted, "Container started")
	}
	if attempt > 1 {
		// Keep the attempt before this one for `kubectl logs --previous`.
		c.removeAttemptsBefore(ctx, pod.UID, ctr.Name, attempt-1)
	}
	if st.State == runtimev1.ContainerState_CONTAINER_STATE_RUNNING && ctr.Lifecycle != nil && ctr.Lifecycle.PostStart != nil {
		return 0, c.postStart(ctx, pod, ctr, st)
	}
	return 0, nil
}

// answersFor checks that a StartContainer answer is the status of the
// attempt asked for: a plugin's garbage must not stand for another
// container, nor for another pod's.
func answersFor(st *runtimev1.ContainerStatus, uid types.UID, name string, attempt uint32) error {
	if st.GetPod().GetUid() == string(uid) && st.GetName() == name && st.GetAttempt() == attempt {
		return nil
	}
	return fmt.Errorf("the runtime answered StartContainer with the status of container %q attempt %d of pod %q, not of attempt %d of this one",
		st.GetName(), st.GetAttempt(), st.GetPod().GetUid(), attempt)
}

// postStart runs the container's postStart hook right after its start. A
// failing hook kills the container, which then restarts as the pod's
// restartPolicy says; the hook's message (it may hold the command's output)
// goes into the container's status, never into an event.
func (c *Steps) postStart(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, st *runtimev1.ContainerStatus) error {
	msg, err := c.hooks.run(ctx, pod, ctr, ctr.Lifecycle.PostStart)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // the pod is being deleted: its termination stops the container
	}
	c.log.Warn("postStart hook failed; killing the container", "pod", pod.Namespace+"/"+pod.Name, "container", ctr.Name)
	containerEvent(c.events, pod, ctr, st.Id, corev1.EventTypeWarning, eventFailedPostStartHook, "PostStartHook failed")
	if _, err := c.stopper.stop(ctx, pod, ctr, st.Id, podGrace(pod), "FailedPostStartHook"); err != nil {
		return fmt.Errorf("kill container %s after its postStart hook failed: %w", ctr.Name, err)
	}
	if shouldRestart(pod.Spec.RestartPolicy, 1) {
		c.waiting.set(pod.UID, ctr.Name, &waitReason{"PostStartHookError", msg})
	}
	return nil
}
