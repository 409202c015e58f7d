package podproxy

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons the agent gives in proxied pods' statuses and events.
const (
	// ReasonProviderFailed is a container's waiting reason while the
	// backend refuses the pod (CreatePod failed); the message is the
	// backend's. As virtual-kubelet names it.
	ReasonProviderFailed = "ProviderFailed"
	// ReasonPodLost is the reason of a pod failed because its backend no
	// longer has it although nobody deleted it (PodStatus.lost).
	ReasonPodLost = "ProviderPodLost"
	// ReasonConfigError is a container's waiting reason while a ConfigMap
	// or Secret the pod requires is missing, as under the kubelet.
	ReasonConfigError = "CreateContainerConfigError"
	// EventFailedCreate is the Warning event of a failed CreatePod of a pod
	// the backend does not run yet; EventFailedUpdate of one it runs.
	EventFailedCreate = "FailedCreate"
	EventFailedUpdate = "FailedUpdate"
	// EventFailedKillPod is the Warning event of a failed DeletePod, as the
	// kubelet names a failed pod kill.
	EventFailedKillPod = "FailedKillPod"

	// reasonStatusUnknown is a container's end when the backend no longer
	// says how it ended, as the kubelet reports such a container.
	reasonStatusUnknown = "ContainerStatusUnknown"
	exitCodeUnknown     = 137
)

// decodeStatus reads a backend's PodStatus.status (core/v1 PodStatus,
// Kubernetes protobuf).
func decodeStatus(data []byte) (*corev1.PodStatus, error) {
	st := &corev1.PodStatus{}
	if err := st.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("decode pod status from the backend: %w", err)
	}
	return st, nil
}

// hubStatus is the backend's status as it is written to the pod on the
// hub. The backend's own view stays (phase, pod IPs, containers, their
// conditions) except what names something of the backend's world that
// means nothing here: the host is the virtual node (its InternalIP when
// the backend reported one, else whatever the pod had), PodScheduled is
// the hub's (the pod was bound to the virtual node), and the QoS class,
// the nominated node and observed generations are the hub's own.
func hubStatus(pod *corev1.Pod, backend *corev1.PodStatus, nodeIP string) *corev1.PodStatus {
	st := backend.DeepCopy()
	st.HostIP, st.HostIPs = pod.Status.HostIP, pod.Status.HostIPs
	if nodeIP != "" {
		st.HostIP, st.HostIPs = nodeIP, []corev1.HostIP{{IP: nodeIP}}
	}
	st.NominatedNodeName = pod.Status.NominatedNodeName
	st.QOSClass = pod.Status.QOSClass
	st.ObservedGeneration = 0

	hubScheduled := findCondition(pod.Status.Conditions, corev1.PodScheduled)
	conditions := make([]corev1.PodCondition, 0, len(st.Conditions)+1)
	for _, cond := range st.Conditions {
		if cond.Type == corev1.PodScheduled {
			continue
		}
		cond.ObservedGeneration = 0
		conditions = append(conditions, cond)
	}
	if hubScheduled != nil {
		conditions = append([]corev1.PodCondition{*hubScheduled}, conditions...)
	}
	st.Conditions = conditions
	return st
}

// waitingStatus is the status of a pod the backend does not run yet,
// every container waiting for the same reason.
func waitingStatus(pod *corev1.Pod, reason, message string) *corev1.PodStatus {
	st := pod.Status.DeepCopy()
	st.Phase = corev1.PodPending
	waiting := func(ctrs []corev1.Container) []corev1.ContainerStatus {
		out := make([]corev1.ContainerStatus, 0, len(ctrs))
		for _, ctr := range ctrs {
			out = append(out, corev1.ContainerStatus{
				Name:  ctr.Name,
				Image: ctr.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
			})
		}
		return out
	}
	st.InitContainerStatuses = waiting(pod.Spec.InitContainers)
	st.ContainerStatuses = waiting(pod.Spec.Containers)
	return st
}

// lostStatus is the final status of a pod its backend lost: Failed, with
// every container that had not ended shown as ended for an unknown reason.
// last is the status written before, if any.
func lostStatus(pod *corev1.Pod, last *corev1.PodStatus, node string) *corev1.PodStatus {
	st := base(pod, last)
	endContainers(st, "The container could not be located: the backend no longer has its pod")
	st.Phase = corev1.PodFailed
	st.Reason = ReasonPodLost
	st.Message = fmt.Sprintf("The backend of node %s (the member cluster) no longer has this pod, although it was not deleted; it is not recreated", node)
	notReady(st)
	return st
}

// finalStatus is the status of a deleted pod that the backend no longer
// has, written before the pod object goes: terminal, as the kubelet leaves
// a deleted pod, Succeeded only when every app container ended with 0.
func finalStatus(pod *corev1.Pod, last *corev1.PodStatus) *corev1.PodStatus {
	st := base(pod, last)
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		return st
	}
	endContainers(st, "The container could not be located when the pod was deleted")
	st.Phase = corev1.PodFailed
	if allSucceeded(pod, st) {
		st.Phase = corev1.PodSucceeded
	}
	notReady(st)
	return st
}

func base(pod *corev1.Pod, last *corev1.PodStatus) *corev1.PodStatus {
	if last != nil {
		return last.DeepCopy()
	}
	return pod.Status.DeepCopy()
}

// endContainers shows every container that has not ended as ended, for a
// reason nobody can tell any more.
func endContainers(st *corev1.PodStatus, message string) {
	for _, list := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
		for i := range list {
			cs := &list[i]
			started := false
			cs.Ready, cs.Started = false, &started
			if cs.State.Terminated != nil {
				continue
			}
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: exitCodeUnknown, Reason: reasonStatusUnknown, Message: message,
			}}
		}
	}
}

// allSucceeded says whether every app container of the pod has a status
// that ended with 0.
func allSucceeded(pod *corev1.Pod, st *corev1.PodStatus) bool {
	for _, ctr := range pod.Spec.Containers {
		ok := false
		for _, cs := range st.ContainerStatuses {
			if cs.Name == ctr.Name && cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0 {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return len(pod.Spec.Containers) > 0
}

// notReady sets the Ready and ContainersReady conditions of a terminal
// status false, with the kubelet's reasons.
func notReady(st *corev1.PodStatus) {
	reason := "PodFailed"
	if st.Phase == corev1.PodSucceeded {
		reason = "PodCompleted"
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	for _, t := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
		setCondition(st, corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, LastTransitionTime: now})
	}
}

func findCondition(conditions []corev1.PodCondition, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range conditions {
		if conditions[i].Type == t {
			return &conditions[i]
		}
	}
	return nil
}

func isTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}
