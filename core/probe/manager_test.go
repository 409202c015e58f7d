package probe

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestTallyThresholds(t *testing.T) {
	spec := &corev1.Probe{SuccessThreshold: 2, FailureThreshold: 3}
	var ty tally
	steps := []struct {
		r    Result
		want bool
	}{
		{Success, false}, {Success, true}, {Success, true},
		{Failure, false}, {Failure, false}, {Success, false}, // a success starts the count over
		{Failure, false}, {Failure, false}, {Failure, true}, {Failure, true},
	}
	for i, s := range steps {
		if got := ty.add(s.r, spec); got != s.want {
			t.Errorf("step %d (%v): %v, want %v", i, s.r, got, s.want)
		}
	}
	// Unset thresholds are the API server's defaults: 1 success, 3 failures.
	var d tally
	if !d.add(Success, &corev1.Probe{}) {
		t.Error("one success with the default threshold does not count")
	}
	if d.add(Failure, &corev1.Probe{}) || d.add(Failure, &corev1.Probe{}) || !d.add(Failure, &corev1.Probe{}) {
		t.Error("the default failure threshold is not 3")
	}
}

// scripted is a Runner whose every run waits for the test to say its outcome.
type scripted struct{ calls chan call }

type call struct {
	probe  *corev1.Probe
	target Target
	reply  chan Outcome
}

func (s *scripted) Run(ctx context.Context, p *corev1.Probe, t Target) Outcome {
	c := call{p, t, make(chan Outcome)}
	select {
	case s.calls <- c:
	case <-ctx.Done():
		return Outcome{}
	}
	select {
	case o := <-c.reply:
		return o
	case <-ctx.Done():
		return Outcome{}
	}
}

// harness runs a Manager on a fake clock with a scripted runner.
type harness struct {
	t        *testing.T
	m        *Manager
	clock    *clocktesting.FakeClock
	runner   *scripted
	changed  chan types.UID
	reports  chan Report
	pod      *corev1.Pod
	started  time.Time
	stopping func()
}

func newHarness(t *testing.T, ctr corev1.Container) *harness {
	h := &harness{
		t:       t,
		started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		runner:  &scripted{calls: make(chan call)},
		changed: make(chan types.UID, 100),
		reports: make(chan Report, 100),
	}
	h.clock = clocktesting.NewFakeClock(h.started)
	h.m = NewManager(Config{
		Runner:   h.runner,
		Changed:  func(uid types.UID) { h.changed <- uid },
		Observed: func(r Report) { h.reports <- r },
		Clock:    h.clock,
	})
	ctr.Name = "main"
	h.pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"}}
	h.pod.Spec.Containers = []corev1.Container{ctr}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.m.Run(ctx); close(done) }()
	h.stopping = func() { cancel(); <-done }
	t.Cleanup(h.stopping)
	return h
}

func (h *harness) run(id string) {
	h.m.SetPod(h.pod, "10.0.0.9", map[string]Attempt{"main": {ID: id, StartedAt: h.started}})
}

// next is the next run a worker asks for; the test then answers it.
func (h *harness) next() call {
	h.t.Helper()
	select {
	case c := <-h.runner.calls:
		return c
	case <-time.After(10 * time.Second):
		h.t.Fatal("no probe ran")
	}
	return call{}
}

func (h *harness) expectChanged() {
	h.t.Helper()
	select {
	case <-h.changed:
	case <-time.After(10 * time.Second):
		h.t.Fatal("the owner was not told of a changed result")
	}
}

func (h *harness) noChange() {
	h.t.Helper()
	select {
	case <-h.changed:
		h.t.Fatal("the owner was told of a change")
	default:
	}
}

// waiters waits until n timers and tickers wait on the fake clock.
func (h *harness) waiters(n int) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.clock.Waiters() != n {
		if time.Now().After(deadline) {
			h.t.Fatalf("%d waiters on the clock, want %d", h.clock.Waiters(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) result(id string, kind Kind) Result {
	return h.m.Result(h.pod.UID, "main", id, kind)
}

func TestReadinessDelayPeriodAndThresholds(t *testing.T) {
	h := newHarness(t, corev1.Container{ReadinessProbe: &corev1.Probe{
		InitialDelaySeconds: 5, PeriodSeconds: 10, SuccessThreshold: 2, FailureThreshold: 1,
	}})
	h.run("a1")
	if r := h.result("a1", Readiness); r != Failure {
		t.Fatalf("readiness before any run: %v, want Failure", r)
	}
	h.waiters(1) // the initial delay
	h.clock.Step(4 * time.Second)
	select {
	case <-h.runner.calls:
		t.Fatal("the probe ran before its initial delay")
	default:
	}
	h.clock.Step(time.Second)
	c := h.next()
	if c.target.PodIP != "10.0.0.9" || c.target.ContainerID != "a1" {
		t.Errorf("target %+v", c.target)
	}
	c.reply <- Outcome{Result: Success}
	h.waiters(1) // the period's ticker
	h.clock.Step(10 * time.Second)
	c = h.next()
	h.noChange() // one success of the two the threshold asks for
	c.reply <- Outcome{Result: Success}
	h.expectChanged()
	if r := h.result("a1", Readiness); r != Success {
		t.Fatalf("after two successes: %v", r)
	}
	h.clock.Step(10 * time.Second)
	h.next().reply <- Outcome{Result: Failure, Message: "sick"}
	h.expectChanged()
	if r := h.result("a1", Readiness); r != Failure {
		t.Fatalf("after a failure with failureThreshold 1: %v", r)
	}
	if rep := <-h.reports; rep.Kind != Readiness || rep.Outcome.Message != "sick" {
		t.Errorf("report %+v", rep)
	}
	// A run that could not be done counts for nothing, but is told.
	h.clock.Step(10 * time.Second)
	h.next().reply <- Outcome{Result: Unknown, Message: "no exec"}
	if rep := <-h.reports; rep.Outcome.Result != Unknown {
		t.Errorf("report %+v", rep)
	}
	h.clock.Step(10 * time.Second)
	h.next().reply <- Outcome{Result: Success}
	h.noChange()
	if r := h.result("a1", Readiness); r != Failure {
		t.Errorf("one success after an unknown run: %v, want still Failure", r)
	}
}

func TestStartupGatesLivenessThenLivenessFails(t *testing.T) {
	h := newHarness(t, corev1.Container{
		StartupProbe:  &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 5},
		LivenessProbe: &corev1.Probe{PeriodSeconds: 10, FailureThreshold: 1},
	})
	startup, liveness := h.pod.Spec.Containers[0].StartupProbe, h.pod.Spec.Containers[0].LivenessProbe
	h.run("a1")
	if r := h.result("a1", Liveness); r != Success {
		t.Errorf("liveness before any run: %v, want Success", r)
	}
	c := h.next()
	if c.probe != startup {
		t.Fatal("a probe other than the startup probe ran before the container started")
	}
	c.reply <- Outcome{Result: Failure}
	h.waiters(2) // both tickers
	h.clock.Step(time.Second)
	c = h.next()
	if c.probe != startup {
		t.Fatal("a probe other than the startup probe ran before the container started")
	}
	c.reply <- Outcome{Result: Success}
	h.expectChanged()
	if r := h.result("a1", Startup); r != Success {
		t.Fatalf("startup after a success: %v", r)
	}
	// Started: the liveness probe runs at once, not a period later.
	c = h.next()
	if c.probe != liveness {
		t.Fatal("the startup probe ran again after its success")
	}
	c.reply <- Outcome{Result: Failure, Message: "dead"}
	h.expectChanged()
	if r := h.result("a1", Liveness); r != Failure {
		t.Fatalf("liveness after a failure with failureThreshold 1: %v", r)
	}
}

func TestAttemptsStopAndForget(t *testing.T) {
	h := newHarness(t, corev1.Container{ReadinessProbe: &corev1.Probe{PeriodSeconds: 10}})
	h.run("a1")
	h.next().reply <- Outcome{Result: Success}
	h.expectChanged()

	// A new attempt starts over: not ready until its own probe succeeds.
	h.run("a2")
	if r := h.result("a1", Readiness); r != Unknown {
		t.Errorf("the old attempt's readiness: %v, want Unknown", r)
	}
	if r := h.result("a2", Readiness); r != Failure {
		t.Errorf("the new attempt's readiness before a run: %v, want Failure", r)
	}
	c := h.next()
	if c.target.ContainerID != "a2" {
		t.Fatalf("probed attempt %q", c.target.ContainerID)
	}
	c.reply <- Outcome{Result: Success}
	h.expectChanged()

	// An attempt that ended has no worker; its result stays until Forget.
	h.m.SetPod(h.pod, "10.0.0.9", nil)
	h.m.Stop(h.pod.UID)
	h.run("a3") // a sync that began before the deletion was seen
	if r := h.result("a3", Readiness); r != Unknown {
		t.Errorf("a stopped pod's probes started again: %v", r)
	}
	if r := h.result("a2", Readiness); r != Success {
		t.Errorf("a stopped pod's results: %v, want kept", r)
	}
	h.m.Forget(h.pod.UID)
	if r := h.result("a2", Readiness); r != Unknown {
		t.Errorf("a forgotten pod's results: %v, want none", r)
	}
	h.stopping() // every worker has ended
}
