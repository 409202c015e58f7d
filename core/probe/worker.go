package probe

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// worker runs one probe of one container attempt until the attempt ends
// (the manager cancels it) or the probe has decided for good: a startup
// probe that succeeded, a liveness or startup probe that failed (the core
// then kills the attempt, and the next attempt gets new workers).
type worker struct {
	m         *Manager
	key       key
	id        string // the container attempt
	spec      *corev1.Probe
	startedAt time.Time
	cancel    context.CancelFunc
	// trigger runs the probe now rather than at the next period: a startup
	// probe's success starts the liveness and readiness probes at once.
	trigger chan struct{}

	mu     sync.Mutex
	target Target

	tally tally
}

func (w *worker) run(ctx context.Context) {
	if !w.waitInitialDelay(ctx) {
		return
	}
	ticker := w.m.clock.NewTicker(seconds(w.spec.PeriodSeconds, 10))
	defer ticker.Stop()
	for w.step(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		case <-w.trigger:
		}
	}
}

// waitInitialDelay waits until initialDelaySeconds have passed since the
// attempt started.
func (w *worker) waitInitialDelay(ctx context.Context) bool {
	delay := time.Duration(w.spec.InitialDelaySeconds)*time.Second - w.m.clock.Since(w.startedAt)
	if delay <= 0 {
		return ctx.Err() == nil
	}
	t := w.m.clock.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// step runs the probe once and records its result once the thresholds
// are met. It says whether the worker goes on.
func (w *worker) step(ctx context.Context) bool {
	if w.key.kind != Startup && !w.m.started(w) {
		return true // liveness and readiness wait for the startup probe
	}
	o := w.m.runner.Run(ctx, w.spec, w.currentTarget())
	if ctx.Err() != nil {
		return false // the attempt ended meanwhile: the outcome is no one's
	}
	if o.Result != Success || o.Warning {
		w.m.observe(w, o)
	}
	if o.Result == Unknown || !w.tally.add(o.Result, w.spec) {
		return true
	}
	w.m.set(w, o.Result)
	switch {
	case o.Result == Failure && w.key.kind != Readiness:
		return false // on hold: the core kills this attempt
	case o.Result == Success && w.key.kind == Startup:
		return false // started: the startup probe is done for this attempt
	}
	return true
}

func (w *worker) currentTarget() Target {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.target
}

func (w *worker) setTarget(t Target) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.target = t
}

// tally counts how many runs in a row gave the same result.
type tally struct {
	last Result
	run  int32
}

// add counts a result and says whether it has now been seen as many times
// in a row as the probe's threshold for it asks (successThreshold,
// failureThreshold; the API server defaults both, to 1 and 3).
func (t *tally) add(r Result, spec *corev1.Probe) bool {
	if r == t.last {
		t.run++
	} else {
		t.last, t.run = r, 1
	}
	need := max(spec.SuccessThreshold, 1)
	if r == Failure {
		need = spec.FailureThreshold
		if need <= 0 {
			need = 3
		}
	}
	return t.run >= need
}
