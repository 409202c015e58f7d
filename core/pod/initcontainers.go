package pod

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// syncInitContainers runs the pod's init containers in order, each to its
// success before the next starts. A failed one is restarted, after the
// crash back-off, unless the pod's restartPolicy is Never: then it stays
// failed and so does the pod (phase computes that). initialized says the
// app containers may run: every init container has succeeded, or an app
// container has run already (init containers are not run again then, as
// the kubelet does not once the pod has been initialized).
func (c *Steps) syncInitContainers(ctx context.Context, pod *corev1.Pod, pulled map[string]pullResult) (initialized bool, wait time.Duration, err error) {
	rt := c.state.get(pod.UID)
	if appStarted(pod, rt) {
		return true, 0, nil
	}
	for i := range pod.Spec.InitContainers {
		ctr := &pod.Spec.InitContainers[i]
		if initSucceeded(rt.latest(ctr.Name)) {
			continue
		}
		wait, err := c.syncContainer(ctx, pod, ctr, initRestartPolicy(pod), pullOf(pulled, ctr.Name))
		return false, wait, err
	}
	return true, 0, nil
}

// initRestartPolicy is how an init container restarts: on failure only,
// and never when the pod never restarts anything.
func initRestartPolicy(pod *corev1.Pod) corev1.RestartPolicy {
	if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.RestartPolicyNever
	}
	return corev1.RestartPolicyOnFailure
}

// initSucceeded says an init container's attempt has completed its work:
// exited with code 0, and not killed for memory.
func initSucceeded(st *runtimev1.ContainerStatus) bool {
	return st != nil && st.State == runtimev1.ContainerState_CONTAINER_STATE_EXITED && st.ExitCode == 0 && st.Reason != "OOMKilled"
}

// appStarted says whether any app container of the pod has been started.
func appStarted(pod *corev1.Pod, rt *podRuntime) bool {
	for _, ctr := range pod.Spec.Containers {
		if rt.latest(ctr.Name) != nil {
			return true
		}
	}
	return false
}
