package pluginhost

import (
	"context"
	"fmt"
	"time"
)

// supervise watches the process until it goes down, then restarts it with
// exponential backoff, until ctx ends. It owns every instance after the
// first, and stops the last one before closing p.done.
func (p *process) supervise(ctx context.Context, inst *instance) {
	defer close(p.done)
	defer p.closeSubscribers()
	t := p.host.timing
	backoff := t.restartBackoff()
	for {
		reason, err := p.watch(ctx, inst)
		p.setDown(reason, err)
		// A process that ran a while is not crash-looping: restart it soon.
		if time.Since(inst.startedAt) >= t.backoffReset {
			backoff = t.restartBackoff()
		}
		inst.stop(reason != ReasonStopped, t.stopTimeout)
		if reason == ReasonStopped {
			return
		}

		for {
			delay := backoff.Step()
			p.log.Info("restarting plugin", "after", delay.String())
			if !sleep(ctx, delay) {
				p.setDown(ReasonStopped, nil)
				return
			}
			inst, err = p.launch(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				p.setDown(ReasonStopped, nil)
				return
			}
			p.setDown(ReasonStartFailed, err)
		}
		p.setUp(inst)
		p.catchUp(ctx, inst)
	}
}

// watch returns when the process exits, fails its health checks
// healthFailures times in a row, or ctx ends, with the reason.
func (p *process) watch(ctx context.Context, inst *instance) (reason string, err error) {
	t := p.host.timing
	tick := time.NewTicker(t.healthInterval)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return ReasonStopped, nil
		case <-inst.exited():
			return ReasonExited, inst.exitError()
		case <-tick.C:
		}
		err := inst.check(ctx, t.healthTimeout)
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return ReasonStopped, nil
		}
		select {
		case <-inst.exited():
			return ReasonExited, inst.exitError()
		default:
		}
		failures++
		p.log.Warn("plugin health check failed", "pid", inst.pid, "failures", failures, "error", err)
		if failures >= t.healthFailures {
			return ReasonUnhealthy, fmt.Errorf("plugin process %d failed %d health checks in a row: %w", inst.pid, failures, err)
		}
	}
}

// sleep waits for d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
