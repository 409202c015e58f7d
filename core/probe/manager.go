package probe

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Config is what a Manager needs from its owner.
type Config struct {
	// Runner runs one probe once; NewProber's in production.
	Runner Runner
	// Changed is told, from a worker's goroutine, that a probe's result for
	// a pod's container attempt changed: the owner syncs the pod again. It
	// must not block.
	Changed func(pod types.UID)
	// Observed is told of every run that did not plainly succeed (a
	// failure, a run that could not be done, a success with a warning),
	// for the kubelet's Unhealthy and ProbeWarning events. Optional.
	Observed func(Report)
	// Clock is the real clock unless a test sets another.
	Clock clock.WithTicker
	Log   *slog.Logger
}

// Report is one run of a probe that did not plainly succeed.
type Report struct {
	Kind    Kind
	Target  Target
	Outcome Outcome
}

// Attempt is a running attempt of a container, as the runtime reports it.
type Attempt struct {
	// ID is the attempt's container ID.
	ID string
	// StartedAt is when it started: initialDelaySeconds count from there.
	StartedAt time.Time
}

// Manager runs a worker for every probe of every running container attempt
// of the pods it is told about, and keeps the results they decide. Its
// goroutines stop when their attempt ends, when their pod is stopped or
// forgotten, and when Run returns.
type Manager struct {
	runner   Runner
	changed  func(types.UID)
	observed func(Report)
	clock    clock.WithTicker
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	workers map[key]*worker
	results map[key]result
	// stopped pods are being deleted: their probes do not start again.
	stopped map[types.UID]bool
}

type key struct {
	pod       types.UID
	container string
	kind      Kind
}

// result is a probe's decision about one attempt of its container.
type result struct {
	id    string
	value Result
}

// NewManager returns a Manager; Run owns its workers.
func NewManager(cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Changed == nil {
		cfg.Changed = func(types.UID) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		runner:   cfg.Runner,
		changed:  cfg.Changed,
		observed: cfg.Observed,
		clock:    cfg.Clock,
		log:      cfg.Log,
		ctx:      ctx,
		cancel:   cancel,
		workers:  map[key]*worker{},
		results:  map[key]result{},
		stopped:  map[types.UID]bool{},
	}
}

// Run returns when ctx ends, after stopping every worker.
func (m *Manager) Run(ctx context.Context) {
	<-ctx.Done()
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// SetPod makes the pod's workers match its running container attempts
// (by container name): every probe of a running attempt has a worker, a
// new attempt gets new workers with fresh results, and an attempt that no
// longer runs has none. podIP is where network probes connect.
func (m *Manager) SetPod(pod *corev1.Pod, podIP string, running map[string]Attempt) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.stopped[pod.UID] {
		return
	}
	for i := range pod.Spec.Containers {
		ctr := &pod.Spec.Containers[i]
		attempt, runs := running[ctr.Name]
		for _, kind := range Kinds {
			spec := kind.Spec(ctr)
			if spec == nil {
				continue
			}
			k := key{pod.UID, ctr.Name, kind}
			target := Target{Pod: pod, Container: ctr, ContainerID: attempt.ID, PodIP: podIP}
			w := m.workers[k]
			if w != nil && runs && w.id == attempt.ID {
				w.setTarget(target)
				continue
			}
			if w != nil {
				w.cancel()
				delete(m.workers, k)
			}
			if runs {
				m.start(k, spec, attempt, target)
			}
		}
	}
}

// start begins the worker of one probe of an attempt; called with m.mu held.
func (m *Manager) start(k key, spec *corev1.Probe, attempt Attempt, target Target) {
	ctx, cancel := context.WithCancel(m.ctx)
	started := attempt.StartedAt
	if started.IsZero() {
		started = m.clock.Now()
	}
	w := &worker{m: m, key: k, id: attempt.ID, spec: spec, startedAt: started, cancel: cancel,
		trigger: make(chan struct{}, 1), target: target}
	m.workers[k] = w
	m.results[k] = result{id: attempt.ID, value: initial(k.kind)}
	m.wg.Go(func() {
		defer cancel()
		w.run(ctx)
	})
}

// initial is a probe's result before it has decided, as the kubelet has
// it: not ready, alive, not started.
func initial(kind Kind) Result {
	switch kind {
	case Readiness:
		return Failure
	case Liveness:
		return Success
	}
	return Unknown
}

// Stop ends the probes of a pod being deleted, keeping their results; the
// pod's probes do not start again until Forget.
func (m *Manager) Stop(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped[uid] = true
	m.stopWorkers(uid)
}

// Forget ends the probes of a pod that is gone and drops their results.
func (m *Manager) Forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.stopped, uid)
	m.stopWorkers(uid)
	for k := range m.results {
		if k.pod == uid {
			delete(m.results, k)
		}
	}
}

func (m *Manager) stopWorkers(uid types.UID) {
	for k, w := range m.workers {
		if k.pod == uid {
			w.cancel()
			delete(m.workers, k)
		}
	}
}

// Result is what the probe of that kind has decided about the attempt
// (the container ID) of a pod's container: Unknown when it has no worker
// for that attempt, else its result (initially Failure for readiness,
// Success for liveness, Unknown for startup).
func (m *Manager) Result(uid types.UID, container, id string, kind Kind) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.results[key{uid, container, kind}]
	if !ok || r.id != id {
		return Unknown
	}
	return r.value
}

// started says whether a worker's container has started, as the startup
// probe decides; one without a startup probe has.
func (m *Manager) started(w *worker) bool {
	if w.currentTarget().Container.StartupProbe == nil {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.results[key{w.key.pod, w.key.container, Startup}]
	return r.id == w.id && r.value == Success
}

// set records what a worker decided and tells the owner when it changed.
// A startup probe's success starts the attempt's other probes at once.
func (m *Manager) set(w *worker, value Result) {
	m.mu.Lock()
	if m.workers[w.key] != w {
		m.mu.Unlock()
		return // replaced or stopped meanwhile
	}
	prev := m.results[w.key]
	m.results[w.key] = result{id: w.id, value: value}
	if w.key.kind == Startup && value == Success {
		for _, kind := range []Kind{Readiness, Liveness} {
			if other := m.workers[key{w.key.pod, w.key.container, kind}]; other != nil && other.id == w.id {
				select {
				case other.trigger <- struct{}{}:
				default:
				}
			}
		}
	}
	m.mu.Unlock()
	if prev.value != value || prev.id != w.id {
		m.log.Debug("probe result changed", "pod_uid", w.key.pod, "container", w.key.container, "probe", w.key.kind, "result", value)
		m.changed(w.key.pod)
	}
}

func (m *Manager) observe(w *worker, o Outcome) {
	if m.observed != nil {
		m.observed(Report{Kind: w.key.kind, Target: w.currentTarget(), Outcome: o})
	}
}
