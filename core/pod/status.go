package pod

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/core/probe"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// report computes the pod's status from what the runtime holds and hands it
// to the status writer.
func (c *Steps) report(pod *corev1.Pod) {
	rt := c.state.get(pod.UID)
	st := c.statuses.compute(pod, rt)
	c.syncProbes(pod, st, rt)
	c.status.Set(pod, st)
}

// statusGenerator computes pods' statuses as the kubelet's generator does,
// from the runtime's records and what the other parts of the strategy
// know: why containers wait, termination messages read from logs, probe
// results, the node's and the pod's addresses.
type statusGenerator struct {
	nodeInfo *podcontroller.NodeInfo
	network  *podNetwork // nil without a network plugin
	waiting  *waitReasons
	messages *terminationMessages
	probes   *probe.Manager
}

// compute is the pod's status as the kubelet would write it.
func (c *statusGenerator) compute(pod *corev1.Pod, rt *podRuntime) *corev1.PodStatus {
	st := pod.Status.DeepCopy()
	// Seconds are what the API keeps: finer times would make every
	// computation differ from what was written.
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	if st.StartTime == nil && rt != nil && rt.sandbox != nil && rt.sandbox.CreatedAtUnixNano != 0 {
		started := unixTime(rt.sandbox.CreatedAtUnixNano)
		st.StartTime = &started
	}
	st.HostIP = c.nodeInfo.Address(context.Background())
	if st.HostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	}
	if pod.Spec.HostNetwork && st.HostIP != "" {
		st.PodIP, st.PodIPs = st.HostIP, []corev1.PodIP{{IP: st.HostIP}}
	}
	if ips := c.network.podIPs(pod.UID); len(ips) > 0 {
		st.PodIP, st.PodIPs = ips[0], nil
		for _, ip := range ips {
			st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
		}
	}

	hasInit := len(pod.Spec.InitContainers) > 0
	st.InitContainerStatuses = nil
	for _, ctr := range pod.Spec.InitContainers {
		cs := c.containerStatus(pod, &ctr, rt, hasInit)
		if rt.latest(ctr.Name) == nil && appStarted(pod, rt) {
			// Its record is gone, but the pod got past it: it succeeded.
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed",
				Message: "Unable to get init container status from container runtime and pod has been initialized, treat it as exited normally"}}
		}
		// A completed init container is ready, as the kubelet reports it.
		cs.Ready = cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	st.ContainerStatuses = st.ContainerStatuses[:0]
	for _, ctr := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, c.containerStatus(pod, &ctr, rt, hasInit))
	}
	st.Phase = phase(pod, st.InitContainerStatuses, st.ContainerStatuses)
	st.Reason, st.Message = "", ""
	if isTerminal(pod) {
		st.Phase = pod.Status.Phase // terminal phases are final
	}

	sandboxReady := rt != nil && rt.sandbox != nil
	setCondition(st, corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: conditionStatus(sandboxReady)}, now)
	setCondition(st, initializedCondition(pod, st), now)
	ready := readyCondition(pod, st)
	setCondition(st, ready, now)
	ready.Type = corev1.PodReady
	setCondition(st, ready, now)
	return st
}

func (c *statusGenerator) containerStatus(pod *corev1.Pod, ctr *corev1.Container, rt *podRuntime, hasInit bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: ctr.Name, Image: ctr.Image}
	last := rt.latest(ctr.Name)
	if prev := rt.previous(ctr.Name); prev != nil {
		cs.LastTerminationState = corev1.ContainerState{Terminated: c.terminated(pod, prev)}
	}
	if last == nil {
		// The kubelet's default: containers wait for the init containers first.
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		if hasInit {
			cs.State.Waiting.Reason = "PodInitializing"
		}
		if w, ok := c.waiting.get(pod.UID, ctr.Name); ok {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
		}
		return cs
	}
	cs.ContainerID = "containerd://" + last.Id
	cs.ImageID = last.ImageRef
	cs.RestartCount = int32(last.Attempt)
	// Started, as the kubelet reports it: running, and past its startup probe.
	started := last.State == runtimev1.ContainerState_CONTAINER_STATE_RUNNING && probeSays(c.probes, pod, ctr, last.Id, probe.Startup)
	cs.Started = &started
	switch last.State {
	case runtimev1.ContainerState_CONTAINER_STATE_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: unixTime(last.StartedAtUnixNano)}
		// Ready once started and past its readiness probe; never while deleted.
		cs.Ready = pod.DeletionTimestamp == nil && started && probeSays(c.probes, pod, ctr, last.Id, probe.Readiness)
	case runtimev1.ContainerState_CONTAINER_STATE_EXITED:
		if w, ok := c.waiting.get(pod.UID, ctr.Name); ok && pod.DeletionTimestamp == nil {
			// Exited, and waiting to be restarted.
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
			cs.LastTerminationState = corev1.ContainerState{Terminated: c.terminated(pod, last)}
		} else {
			cs.State.Terminated = c.terminated(pod, last)
		}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	return cs
}

// terminated is how an attempt ended; its message is what it wrote to its
// termination message file, or else the end of its log when its policy
// says so (terminationMessages.read).
func (c *statusGenerator) terminated(pod *corev1.Pod, st *runtimev1.ContainerStatus) *corev1.ContainerStateTerminated {
	msg := st.Message
	if msg == "" {
		msg = c.messages.message(pod.UID, st.Id)
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    st.ExitCode,
		Reason:      st.Reason,
		Message:     msg,
		StartedAt:   unixTime(st.StartedAtUnixNano),
		FinishedAt:  unixTime(st.FinishedAtUnixNano),
		ContainerID: "containerd://" + st.Id,
	}
}

// phase follows the kubelet: Pending until every init container has
// succeeded and every container has started (Failed at once if an init
// container failed and nothing restarts), Running while any runs or will
// be restarted, and Succeeded or Failed once all have exited for good.
func phase(pod *corev1.Pod, initStatuses, statuses []corev1.ContainerStatus) corev1.PodPhase {
	var pendingInit, failedInit int
	for _, cs := range initStatuses {
		switch {
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			if cs.LastTerminationState.Terminated.ExitCode != 0 {
				failedInit++ // failed, and waiting to be restarted
			}
		default:
			pendingInit++
		}
	}
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
	case failedInit > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
		return corev1.PodFailed
	case stopped && failed > 0:
		return corev1.PodFailed // a deleted pod is not restarted: its phase is final
	case stopped && succeeded > 0:
		return corev1.PodSucceeded
	case pendingInit > 0 || failedInit > 0 || waiting > 0:
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

// initializedCondition is the kubelet's Initialized condition: true once
// every init container has succeeded (reason PodCompleted when the pod
// has), or an app container has run; else false, naming the init
// containers not done.
func initializedCondition(pod *corev1.Pod, st *corev1.PodStatus) corev1.PodCondition {
	cond := corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	if len(pod.Spec.InitContainers) == 0 {
		return cond
	}
	if st.Phase == corev1.PodSucceeded {
		cond.Reason = "PodCompleted"
		return cond
	}
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil {
			return cond
		}
	}
	var incomplete []string
	for _, cs := range st.InitContainerStatuses {
		if !cs.Ready {
			incomplete = append(incomplete, cs.Name)
		}
	}
	if len(incomplete) == 0 {
		return cond
	}
	cond.Status = corev1.ConditionFalse
	cond.Reason = "ContainersNotInitialized"
	cond.Message = fmt.Sprintf("containers with incomplete status: %s", incomplete)
	return cond
}

// readyCondition is the kubelet's ContainersReady condition (the Ready
// condition is the same while the pod has no readiness gates).
func readyCondition(pod *corev1.Pod, st *corev1.PodStatus) corev1.PodCondition {
	cond := corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionFalse}
	switch st.Phase {
	case corev1.PodSucceeded:
		cond.Reason = "PodCompleted"
		return cond
	case corev1.PodFailed:
		cond.Reason = "PodFailed"
		return cond
	}
	var unready []string
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	if len(unready) > 0 {
		cond.Reason = "ContainersNotReady"
		cond.Message = fmt.Sprintf("containers with unready status: %s", unready)
		return cond
	}
	cond.Status = corev1.ConditionTrue
	return cond
}

func conditionStatus(ok bool) corev1.ConditionStatus {
	if ok {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

// setCondition sets one condition the agent owns, keeping its transition
// time while its status stays the same.
func setCondition(st *corev1.PodStatus, cond corev1.PodCondition, now metav1.Time) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == cond.Type {
			if st.Conditions[i].Status != cond.Status {
				st.Conditions[i].LastTransitionTime = now
			}
			st.Conditions[i].Status, st.Conditions[i].Reason, st.Conditions[i].Message = cond.Status, cond.Reason, cond.Message
			return
		}
	}
	cond.LastTransitionTime = now
	st.Conditions = append(st.Conditions, cond)
}

// unixTime is a runtime timestamp in whole seconds, as the API keeps it: a
// finer one would never equal what was written and read back, and every
// status would be written twice.
func unixTime(nanos int64) metav1.Time {
	if nanos == 0 {
		return metav1.Time{}
	}
	return metav1.NewTime(time.Unix(0, nanos).Truncate(time.Second))
}
