package conformance

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// suite is one run of the kit: the plugin, started once, and the checks
// run against it in turn.
type suite struct {
	cfg      Config
	plugin   target      // nil when the start failed
	startErr *startError // why, when it did
}

// starter starts the plugin under test: startPlugin launches a binary,
// startServer serves an implementation in this process.
type starter func(context.Context, Config) (target, error)

func newSuite(ctx context.Context, cfg Config, start starter) *suite {
	s := &suite{cfg: cfg}
	p, err := start(ctx, cfg)
	if err != nil {
		var se *startError
		if !errors.As(err, &se) {
			se = &startError{stageHandshake, err}
		}
		s.startErr = se
		return s
	}
	s.plugin = p
	return s
}

// choose picks the suite from the capabilities the plugin declared in
// Describe when the host started it, and says why.
func (s *suite) choose() (Suite, string) {
	if s.plugin == nil {
		return ContainerSuite, fmt.Sprintf("the plugin did not start (%s failed), so it declared no capabilities: the container-level checks are reported, none of them run", s.startErr.stage)
	}
	d := s.plugin.describe()
	if slices.Contains(d.GetCapabilities(), runtimev1.Capability_CAPABILITY_WHOLE_PODS.String()) {
		return WholePodSuite, fmt.Sprintf("Describe of %s %s declares CAPABILITY_WHOLE_PODS: the pod-level calls (CreatePod, DeletePod, ListPods, WatchPods; logs, exec, attach and port-forward of whole pods) are checked, and the container-level calls must answer Unimplemented", d.GetName(), d.GetVersion())
	}
	return ContainerSuite, fmt.Sprintf("Describe of %s %s does not declare CAPABILITY_WHOLE_PODS: the container-level calls (sandboxes, images, containers, logs, exec, attach, port-forward) are checked", d.GetName(), d.GetVersion())
}

func (s *suite) close() error {
	if s.plugin == nil {
		return nil
	}
	return s.plugin.stop()
}

// run runs one check in a goroutine of its own, so that a failure can end it
// at once (as t.FailNow does), then runs its cleanups.
func (s *suite) run(ctx context.Context, c Check) Outcome {
	p := &probe{suite: s, check: c, ctx: ctx}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer p.runCleanups()
		defer func() {
			if r := recover(); r != nil {
				p.errs = append(p.errs, fmt.Errorf("the kit itself failed (a bug in the kit): %v\n%s", r, debug.Stack()))
			}
		}()
		if c.run == nil {
			p.Fatalf("the check has nothing to run")
		}
		if s.plugin != nil {
			// A check never pays for a crash the one before it caused.
			if _, err := s.waitUp(ctx); err != nil {
				p.Fatalf("not run: %v", err)
			}
		}
		c.run(p)
	}()
	<-done
	return Outcome{Check: c, Err: errors.Join(p.errs...), Duration: time.Since(start)}
}

// waitUp waits until the plugin has a live instance up: at once, unless
// the one serving died and is being restarted. It returns what the host said
// of the death it waited through, if any.
func (s *suite) waitUp(ctx context.Context) (down string, err error) {
	events, unsubscribe := s.plugin.subscribe()
	defer unsubscribe()
	timeout := time.NewTimer(2 * s.cfg.Timeout)
	defer timeout.Stop()
	var last lifeEvent
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return down, errors.New("the plugin host has stopped the plugin")
			}
			// A process that died is still Started until the host notices;
			// its Down and the next Started follow.
			if ev.up && s.plugin.live() {
				return down, nil
			}
			if !ev.up && down == "" {
				down = ev.message
			}
			last = ev
		case <-timeout.C:
			return down, fmt.Errorf("the plugin has been down for %v: %s: %s", 2*s.cfg.Timeout, last.reason, last.message)
		case <-ctx.Done():
			return down, ctx.Err()
		}
	}
}

// requirePlugin ends the check when the plugin did not start: there is
// nothing to call.
func (p *probe) requirePlugin() {
	if p.suite.plugin == nil {
		p.Fatalf("not run: the plugin did not start (%s failed): %v", p.suite.startErr.stage, p.suite.startErr.err)
	}
}

// Fatalf records a failure and ends the check; its cleanups still run.
func (p *probe) Fatalf(format string, args ...any) {
	p.Errorf(format, args...)
	runtime.Goexit()
}

// Errorf records a failure; the check goes on.
func (p *probe) Errorf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

// cleanup registers f to run when the check ends, last registered first. A
// cleanup that fails fails the check: removing what a check made is part of
// the protocol too.
func (p *probe) cleanup(f func(ctx context.Context) error) {
	p.cleanups = append(p.cleanups, f)
}

func (p *probe) runCleanups() {
	if len(p.cleanups) > 0 && p.suite.plugin != nil {
		// A plugin the check crashed is restarted before it cleans up.
		_, _ = p.suite.waitUp(context.WithoutCancel(p.ctx))
	}
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		// Cleanups run even when the caller's context has ended.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), p.suite.cfg.Timeout)
		if err := p.cleanups[i](ctx); err != nil {
			p.errs = append(p.errs, fmt.Errorf("cleanup: %w", err))
		}
		cancel()
	}
}
