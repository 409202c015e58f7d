package pod

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fedlet/fedlet/core/podcontroller"
	"github.com/fedlet/fedlet/core/probe"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// verdicts answers each probe with a fixed result.
type verdicts map[*corev1.Probe]probe.Result

// fixedRunner is a probe runner that answers with the verdicts.
type fixedRunner struct{ v verdicts }

func (f fixedRunner) Run(_ context.Context, p *corev1.Probe, _ probe.Target) probe.Outcome {
	return probe.Outcome{Result: f.v[p]}
}

// The container's started and ready, and the pod's Ready and
// ContainersReady conditions, follow its startup and readiness probes.
func TestStatusFollowsProbes(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name:           "app",
		StartupProbe:   &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1000},
		ReadinessProbe: &corev1.Probe{PeriodSeconds: 1},
	}}}}
	pod.UID = "u1"
	ctr := &pod.Spec.Containers[0]
	rt := &podRuntime{
		sandbox: &runtimev1.Sandbox{Id: "sb", CreatedAtUnixNano: 1_000_000_000},
		containers: map[string][]*runtimev1.ContainerStatus{"app": {
			{Name: "app", Id: "c0", State: runtimev1.ContainerState_CONTAINER_STATE_RUNNING, StartedAtUnixNano: time.Now().UnixNano()},
		}},
	}
	status := func(v verdicts, want func(probe.Result) bool) *corev1.PodStatus {
		t.Helper()
		c := &Steps{waiting: newWaitReasons(), nodeInfo: podcontroller.KnownNode("192.0.2.7", nil)}
		c.probes = probe.NewManager(probe.Config{Runner: fixedRunner{v}})
		c.statuses = &statusGenerator{nodeInfo: c.nodeInfo, waiting: c.waiting, messages: newTerminationMessages(nil, "", nil), probes: c.probes}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.probes.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		st := c.statuses.compute(pod, rt)
		c.syncProbes(pod, st, rt)
		deadline := time.Now().Add(10 * time.Second)
		for !want(c.probes.Result(pod.UID, "app", "c0", probe.Readiness)) || !want(c.probes.Result(pod.UID, "app", "c0", probe.Startup)) {
			if time.Now().After(deadline) {
				t.Fatal("the probes did not decide")
			}
			time.Sleep(5 * time.Millisecond)
		}
		return c.statuses.compute(pod, rt)
	}

	// Not started yet: neither started nor ready, whatever readiness says.
	st := status(verdicts{ctr.StartupProbe: probe.Failure, ctr.ReadinessProbe: probe.Success},
		func(r probe.Result) bool { return r != probe.Success })
	cs := st.ContainerStatuses[0]
	if *cs.Started || cs.Ready || condition(st, corev1.PodReady).Status != corev1.ConditionFalse || condition(st, corev1.ContainersReady).Status != corev1.ConditionFalse {
		t.Errorf("before the startup probe's success: started %v ready %v, conditions %+v", *cs.Started, cs.Ready, st.Conditions)
	}
	if st.Phase != corev1.PodRunning || cs.State.Running == nil {
		t.Errorf("a container not yet started by its probe is still running: %s %+v", st.Phase, cs.State)
	}

	// Started and ready.
	st = status(verdicts{ctr.StartupProbe: probe.Success, ctr.ReadinessProbe: probe.Success},
		func(r probe.Result) bool { return r == probe.Success })
	cs = st.ContainerStatuses[0]
	if !*cs.Started || !cs.Ready || condition(st, corev1.PodReady).Status != corev1.ConditionTrue || condition(st, corev1.ContainersReady).Status != corev1.ConditionTrue {
		t.Errorf("after both probes' success: started %v ready %v, conditions %+v", *cs.Started, cs.Ready, st.Conditions)
	}
}
