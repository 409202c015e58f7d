package conformance

import (
	"strings"
	"syscall"
	"time"

	"github.com/fedlet/fedlet/plugins/pluginhost"
)

// Restarts of the plugin process.
var restartChecks = []Check{
	{
		Name: "adopt-after-plugin-restart",
		Rule: "after the plugin process is killed and restarted, ListSandboxes lists what still runs (it is how the agent adopts it), and a repeated StartContainer of a running attempt starts nothing: nothing is started twice, nothing running is killed",
		run:  checkAdoptAfterRestart,
	},
}

func checkAdoptAfterRestart(p *probe) {
	pod := p.podWithImage()
	started := p.start(pod, "survivor", 0, "echo started; exec sleep 3600")
	before := p.waitState(pod, "survivor", 0, stateRunning)
	p.waitLog(pod, "survivor", "started")

	oldPid := p.killPlugin()
	newPid, err := p.suite.plugin.pid()
	if err != nil {
		p.Fatalf("after the restart: %v", err)
	}
	if newPid == oldPid {
		p.Fatalf("the plugin host announced a restart, but pid %d still serves", oldPid)
	}

	after := p.attempt(pod, "survivor", 0)
	if after.GetState() != stateRunning || after.GetId() != started.GetId() {
		p.Fatalf("after the restart ListSandboxes lists %s; want id %q still RUNNING", describeStatus(after), started.GetId())
	}
	if after.GetStartedAtUnixNano() != before.GetStartedAtUnixNano() {
		p.Errorf("after the restart the container lists start time %d, before it %d: it was started again", after.GetStartedAtUnixNano(), before.GetStartedAtUnixNano())
	}
	again := p.start(pod, "survivor", 0, "echo started; exec sleep 3600")
	if again.GetId() != started.GetId() || again.GetState() != stateRunning || again.GetStartedAtUnixNano() != before.GetStartedAtUnixNano() {
		p.Errorf("a repeated StartContainer after the restart answered %s started at %d; want id %q RUNNING since %d",
			describeStatus(again), again.GetStartedAtUnixNano(), started.GetId(), before.GetStartedAtUnixNano())
	}
	if n := len(p.attempts(pod, "survivor")); n != 1 {
		p.Errorf("ListSandboxes lists %d entries of the container, want one attempt", n)
	}
	if out := p.allLogs(pod, "survivor"); strings.Count(out, "started\n") != 1 {
		p.Errorf("the container's log %q shows it ran more than once", out)
	}
}

// killPlugin kills the plugin process with SIGKILL and waits until the
// plugin host has restarted and configured a new one. It returns the pid
// it killed.
func (p *probe) killPlugin() int {
	p.requirePlugin()
	events, unsubscribe := p.suite.plugin.rt.Subscribe()
	defer unsubscribe()
	if ev := <-events; ev.Kind != pluginhost.Started {
		p.Fatalf("the plugin is not up before the kill: %s", ev.Message)
	}
	pid, err := p.suite.plugin.pid()
	if err != nil {
		p.Fatalf("%v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		p.Fatalf("kill -9 the plugin process %d: %v", pid, err)
	}
	// The restart waits for a backoff, a new handshake, Describe and
	// Configure; allow the start timeout of each.
	timeout := time.NewTimer(2 * p.suite.cfg.Timeout)
	defer timeout.Stop()
	down := false
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				p.Fatalf("the plugin host stopped after the plugin was killed")
			}
			switch ev.Kind {
			case pluginhost.Down:
				down = true
			case pluginhost.Started:
				if down {
					return pid
				}
			}
		case <-timeout.C:
			up, reason, msg := p.suite.plugin.rt.State()
			p.Fatalf("the plugin was not restarted within %v of kill -9 (up %v, %s: %s)", 2*p.suite.cfg.Timeout, up, reason, msg)
		case <-p.ctx.Done():
			p.Fatalf("interrupted: %v", p.ctx.Err())
		}
	}
}
