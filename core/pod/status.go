package pod

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// report computes the pod's status from what the runtime holds and hands it
// to the status writer.
func (c *Controller) report(pod *corev1.Pod) {
	st := c.computeStatus(pod, c.state.get(pod.UID))
	c.status.Set(pod, st)
}

// computeStatus is the pod's status as the kubelet would write it.
func (c *Controller) computeStatus(pod *corev1.Pod, rt *podRuntime) *corev1.PodStatus {
	st := pod.Status.DeepCopy()
	// Seconds are what the API keeps: finer times would make every
	// computation differ from what was written.
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	if st.StartTime == nil && rt != nil && rt.sandbox != nil && rt.sandbox.CreatedAtUnixNano != 0 {
		started := unixTime(rt.sandbox.CreatedAtUnixNano)
		st.StartTime = &started
	}
	st.HostIP = c.nodeIP()
	if st.HostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	}
	if pod.Spec.HostNetwork && st.HostIP != "" {
		st.PodIP, st.PodIPs = st.HostIP, []corev1.PodIP{{IP: st.HostIP}}
	}

	st.ContainerStatuses = st.ContainerStatuses[:0]
	for _, ctr := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, c.containerStatus(pod, &ctr, rt))
	}
	st.Phase = phase(pod, st.ContainerStatuses)
	st.Reason, st.Message = "", ""
	if isTerminal(pod) {
		st.Phase = pod.Status.Phase // terminal phases are final
	}

	allReady := len(st.ContainerStatuses) > 0
	for _, cs := range st.ContainerStatuses {
		allReady = allReady && cs.Ready
	}
	sandboxReady := rt != nil && rt.sandbox != nil
	setCondition(st, corev1.PodReadyToStartContainers, sandboxReady, "", now)
	setCondition(st, corev1.PodInitialized, true, "", now)
	setCondition(st, corev1.ContainersReady, allReady, "ContainersNotReady", now)
	setCondition(st, corev1.PodReady, allReady, "ContainersNotReady", now)
	return st
}

func (c *Controller) containerStatus(pod *corev1.Pod, ctr *corev1.Container, rt *podRuntime) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: ctr.Name, Image: ctr.Image}
	last := rt.latest(ctr.Name)
	if prev := rt.previous(ctr.Name); prev != nil {
		cs.LastTerminationState = corev1.ContainerState{Terminated: terminated(prev)}
	}
	if last == nil {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		if w, ok := c.waitingOf(pod.UID, ctr.Name); ok {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
		}
		return cs
	}
	cs.ContainerID = "containerd://" + last.Id
	cs.ImageID = last.ImageRef
	cs.RestartCount = int32(last.Attempt)
	started := last.State != runtimev1.ContainerState_CONTAINER_STATE_CREATED
	cs.Started = &started
	switch last.State {
	case runtimev1.ContainerState_CONTAINER_STATE_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: unixTime(last.StartedAtUnixNano)}
		cs.Ready = pod.DeletionTimestamp == nil
	case runtimev1.ContainerState_CONTAINER_STATE_EXITED:
		if w, ok := c.waitingOf(pod.UID, ctr.Name); ok && pod.DeletionTimestamp == nil {
			// Exited, and waiting to be restarted.
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
			cs.LastTerminationState = corev1.ContainerState{Terminated: terminated(last)}
		} else {
			cs.State.Terminated = terminated(last)
		}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	return cs
}

func terminated(st *runtimev1.ContainerStatus) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode:    st.ExitCode,
		Reason:      st.Reason,
		Message:     st.Message,
		StartedAt:   unixTime(st.StartedAtUnixNano),
		FinishedAt:  unixTime(st.FinishedAtUnixNano),
		ContainerID: "containerd://" + st.Id,
	}
}

// phase follows the kubelet: Pending until every container has started,
// Running while any runs or will be restarted, and Succeeded or Failed
// once all have exited for good.
func phase(pod *corev1.Pod, statuses []corev1.ContainerStatus) corev1.PodPhase {
	var waiting, running, succeeded, failed int
	for _, cs := range statuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			succeeded++
		case cs.State.Terminated != nil:
			failed++
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			running++ // restarting
		default:
			waiting++
		}
	}
	stopped := pod.DeletionTimestamp != nil && waiting == 0 && running == 0
	switch {
	case stopped && failed > 0:
		return corev1.PodFailed // a deleted pod is not restarted: its phase is final
	case stopped && succeeded > 0:
		return corev1.PodSucceeded
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case failed > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
		return corev1.PodFailed
	case failed > 0:
		return corev1.PodRunning // about to restart
	case succeeded > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
		return corev1.PodRunning // about to restart
	case succeeded > 0:
		return corev1.PodSucceeded
	}
	return corev1.PodPending
}

// setCondition sets one condition the agent owns, keeping its transition
// time while its status stays the same.
func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, falseReason string, now metav1.Time) {
	status, reason := corev1.ConditionTrue, ""
	if !ok {
		status, reason = corev1.ConditionFalse, falseReason
	}
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			if st.Conditions[i].Status != status {
				st.Conditions[i].LastTransitionTime = now
			}
			st.Conditions[i].Status, st.Conditions[i].Reason = status, reason
			return
		}
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, LastTransitionTime: now})
}

func unixTime(nanos int64) metav1.Time {
	if nanos == 0 {
		return metav1.Time{}
	}
	return metav1.NewTime(time.Unix(0, nanos))
}
