package pod

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fedlet/fedlet/core/probe"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// hostNetworkProbeIP is where a host-network pod's network probes connect
// while the node's address is not known.
const hostNetworkProbeIP = "127.0.0.1"

// newProbes returns the probe manager of the controller: exec probes run
// through the runtime's Exec, as exec hooks do; a changed result syncs the
// pod again, as a runtime event does.
func (c *Steps) newProbes() *probe.Manager {
	return probe.NewManager(probe.Config{
		Runner:   probe.NewProber(probeExecer{c}),
		Changed:  c.ctrl.Enqueue,
		Observed: c.probeEvent,
		Log:      c.log,
	})
}

// probeExecer runs exec probes through runCommand, the path of exec hooks.
type probeExecer struct{ c *Steps }

func (e probeExecer) ExecSync(ctx context.Context, uid types.UID, container string, cmd []string) (int32, string, error) {
	code, stdout, stderr, err := e.c.exec.run(ctx, uid, container, cmd)
	return code, stdout + stderr, err
}

// syncProbes gives the probe manager the pod's running attempts and its IP
// (a host-network pod's is the node's, or loopback until that is known):
// each running attempt's probes run, those of attempts that ended stop.
// A pod being deleted or done runs no probe.
func (c *Steps) syncProbes(pod *corev1.Pod, st *corev1.PodStatus, rt *podRuntime) {
	if !hasProbes(pod) {
		return
	}
	running := map[string]probe.Attempt{}
	if pod.DeletionTimestamp == nil && !isTerminal(pod) {
		for _, ctr := range pod.Spec.Containers {
			last := rt.latest(ctr.Name)
			if last == nil || last.State != runtimev1.ContainerState_CONTAINER_STATE_RUNNING {
				continue
			}
			a := probe.Attempt{ID: last.Id}
			if last.StartedAtUnixNano != 0 {
				a.StartedAt = time.Unix(0, last.StartedAtUnixNano)
			}
			running[ctr.Name] = a
		}
	}
	ip := st.PodIP
	if ip == "" && pod.Spec.HostNetwork {
		ip = hostNetworkProbeIP
	}
	c.probes.SetPod(pod, ip, running)
}

// probeSays whether the container's probe of that kind lets the attempt
// count as started (Startup) or ready (Readiness): yes without such a
// probe, else once the probe has succeeded for this attempt.
func probeSays(probes *probe.Manager, pod *corev1.Pod, ctr *corev1.Container, id string, kind probe.Kind) bool {
	if kind.Spec(ctr) == nil {
		return true
	}
	return probes.Result(pod.UID, ctr.Name, id, kind) == probe.Success
}

// killUnhealthy kills, as the kubelet does, every running attempt whose
// liveness or startup probe has failed failureThreshold times in a row:
// through stopContainer (Killing event, preStop hook), within the probe's
// terminationGracePeriodSeconds if it has one, else the pod's. The pod's
// sync then restarts the container as its restartPolicy says, with the
// crash back-off.
func (c *Steps) killUnhealthy(ctx context.Context, pod *corev1.Pod) error {
	if !hasProbes(pod) {
		return nil
	}
	rt := c.state.get(pod.UID)
	for i := range pod.Spec.Containers {
		ctr := &pod.Spec.Containers[i]
		last := rt.latest(ctr.Name)
		if last == nil || last.State != runtimev1.ContainerState_CONTAINER_STATE_RUNNING {
			continue
		}
		var failed *corev1.Probe
		var what string
		switch {
		case ctr.LivenessProbe != nil && c.probes.Result(pod.UID, ctr.Name, last.Id, probe.Liveness) == probe.Failure:
			failed, what = ctr.LivenessProbe, "liveness"
		case ctr.StartupProbe != nil && c.probes.Result(pod.UID, ctr.Name, last.Id, probe.Startup) == probe.Failure:
			failed, what = ctr.StartupProbe, "startup"
		default:
			continue
		}
		msg := fmt.Sprintf("Container %s failed %s probe", ctr.Name, what)
		if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
			msg += ", will be restarted"
		}
		grace := podGrace(pod)
		if failed.TerminationGracePeriodSeconds != nil {
			grace = *failed.TerminationGracePeriodSeconds
		}
		c.log.Info("killing a container that failed its probe", "pod", pod.Namespace+"/"+pod.Name, "container", ctr.Name, "probe", what)
		if _, err := c.stopper.stop(ctx, pod, ctr, last.Id, grace, msg); err != nil {
			return fmt.Errorf("kill container %s after its %s probe failed: %w", ctr.Name, what, err)
		}
	}
	return nil
}

// probeEvent records a probe run that did not plainly succeed as the
// kubelet does: Unhealthy for a failure or a run that could not be done,
// ProbeWarning for a success worth telling.
func (c *Steps) probeEvent(r probe.Report) {
	t := r.Target
	switch o := r.Outcome; {
	case o.Result == probe.Failure:
		containerEvent(c.events, t.Pod, t.Container, t.ContainerID, corev1.EventTypeWarning, eventUnhealthy, "%s probe failed: %s", r.Kind, o.Message)
	case o.Result == probe.Unknown:
		containerEvent(c.events, t.Pod, t.Container, t.ContainerID, corev1.EventTypeWarning, eventUnhealthy, "%s probe errored: %s", r.Kind, o.Message)
	case o.Warning:
		containerEvent(c.events, t.Pod, t.Container, t.ContainerID, corev1.EventTypeWarning, eventProbeWarning, "%s probe warning: %s", r.Kind, o.Message)
	}
}

// hasProbes says whether any app container of the pod has a probe.
func hasProbes(pod *corev1.Pod) bool {
	for _, ctr := range pod.Spec.Containers {
		if ctr.LivenessProbe != nil || ctr.ReadinessProbe != nil || ctr.StartupProbe != nil {
			return true
		}
	}
	return false
}
