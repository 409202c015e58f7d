package pod

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// stopSlack is how much longer than the grace period a StopContainer call may take.
const stopSlack = 30 * time.Second

// minStopGrace is the least time a container is given to stop, as the
// kubelet gives it, even when its preStop hook used up the grace period.
const minStopGrace = 2

// containerStopper stops running containers as the kubelet's killContainer
// does: for a deletion, a failed postStart hook or a failed probe.
type containerStopper struct {
	runtime runtimev1.RuntimeClient
	node    string
	hooks   *hookRunner
	state   *runtimeState
	events  record.EventRecorder
	log     *slog.Logger
}

// stop stops a running container as the kubelet's killContainer
// does: the Killing event (message, or "Stopping container NAME"), the
// preStop hook within the grace period, then the runtime's stop with what
// is left of it, never less than minStopGrace.
func (c *containerStopper) stop(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, id string, grace int64, message string) (*runtimev1.ContainerStatus, error) {
	if message == "" {
		message = "Stopping container " + ctr.Name
	}
	containerEvent(c.events, pod, ctr, id, corev1.EventTypeNormal, eventKilling, "%s", message)
	if ctr.Lifecycle != nil && ctr.Lifecycle.PreStop != nil && grace > 0 {
		grace -= c.preStop(ctx, pod, ctr, id, grace)
	}
	grace = max(grace, minStopGrace)
	callCtx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second+stopSlack)
	defer cancel()
	st, err := c.runtime.StopContainer(callCtx, &runtimev1.StopContainerRequest{
		Node: c.node, PodUid: string(pod.UID), Name: ctr.Name, GracePeriodSeconds: grace,
	})
	if err != nil {
		return nil, fmt.Errorf("stop container %s of pod %s/%s: %w", ctr.Name, pod.Namespace, pod.Name, err)
	}
	c.state.setContainer(st)
	return st, nil
}

// preStop runs the container's preStop hook for at most grace seconds and
// returns the whole seconds it took.
func (c *containerStopper) preStop(ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, id string, grace int64) int64 {
	began := time.Now()
	hookCtx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second)
	defer cancel()
	if _, err := c.hooks.run(hookCtx, pod, ctr, ctr.Lifecycle.PreStop); err != nil {
		if hookCtx.Err() != nil && ctx.Err() == nil {
			c.log.Info("preStop hook did not complete within the grace period", "pod", pod.Namespace+"/"+pod.Name, "container", ctr.Name, "grace_seconds", grace)
		} else {
			c.log.Warn("preStop hook failed", "pod", pod.Namespace+"/"+pod.Name, "container", ctr.Name)
			containerEvent(c.events, pod, ctr, id, corev1.EventTypeWarning, eventFailedPreStopHook, "PreStopHook failed")
		}
	}
	return int64(time.Since(began).Seconds())
}
