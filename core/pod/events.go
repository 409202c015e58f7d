package pod

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
)

// Event reasons, as the kubelet records them (pkg/kubelet/events).
const (
	eventPulling             = "Pulling"
	eventPulled              = "Pulled"
	eventFailed              = "Failed"
	eventBackOff             = "BackOff"
	eventErrImageNeverPull   = "ErrImageNeverPull"
	eventCreated             = "Created"
	eventStarted             = "Started"
	eventKilling             = "Killing"
	eventFailedPostStartHook = "FailedPostStartHook"
	eventFailedPreStopHook   = "FailedPreStopHook"
	eventUnhealthy           = "Unhealthy"
	eventProbeWarning        = "ProbeWarning"
)

// containerEvent records an event about one container of the pod, as the
// kubelet does: on the pod, with the container's field path, so that
// `kubectl describe` and `kubectl events` say which container it is about.
// The container's runtime ID, when an error message holds it, is replaced
// by its name, so that events of successive attempts aggregate.
func containerEvent(events record.EventRecorder, pod *corev1.Pod, ctr *corev1.Container, containerID, eventType, reason, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	if containerID != "" {
		msg = strings.ReplaceAll(msg, containerID, ctr.Name)
	}
	ref, err := reference.GetPartialReference(scheme.Scheme, pod, containerFieldPath(pod, ctr.Name))
	if err != nil {
		events.Event(pod, eventType, reason, msg)
		return
	}
	events.Event(ref, eventType, reason, msg)
}

// containerFieldPath locates a container within its pod, as the kubelet's
// event references do: "spec.containers{app}", "spec.initContainers{init}".
func containerFieldPath(pod *corev1.Pod, name string) string {
	for _, ctr := range pod.Spec.InitContainers {
		if ctr.Name == name {
			return fmt.Sprintf("spec.initContainers{%s}", name)
		}
	}
	return fmt.Sprintf("spec.containers{%s}", name)
}

// podName is how the kubelet names a pod in messages: name_namespace(uid).
func podName(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}
