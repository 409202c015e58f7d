package conformance

import (
	"context"
	"strings"
	"time"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Stopping: SIGTERM, the grace period, SIGKILL.
var stopChecks = []Check{
	{
		Name: "stop-sigterm",
		Rule: "StopContainer sends SIGTERM, waits up to the grace period, then SIGKILL: a container that exits on SIGTERM exits with its own code; the status answered is the container's final one (the agent records it)",
		run:  checkStopSIGTERM,
	},
	{
		Name: "stop-sigkill",
		Rule: "StopContainer sends SIGTERM, waits up to the grace period, then SIGKILL: a container that ignores SIGTERM is killed (exit code 137) once the grace period is over",
		run:  checkStopSIGKILL,
	},
	{
		Name: "stop-repeated",
		Rule: "StopContainer of a container that has exited already sends nothing and answers its final status again (the same exit code), as often as it is called",
		run:  checkStopRepeated,
	},
	{
		Name: "remove-container-repeated",
		Rule: "RemoveContainer removes the exited attempts older than keep_attempt and leaves that one listed; repeated, it succeeds and removes nothing more",
		run:  checkRemoveContainerRepeated,
	},
}

// stop calls StopContainer, given grace more than the per-call timeout.
func (p *probe) stop(pod *runtimev1.PodRef, name string, grace int64) *runtimev1.ContainerStatus {
	ctx, cancel := context.WithTimeout(p.ctx, p.suite.cfg.Timeout+time.Duration(grace)*time.Second)
	defer cancel()
	st, err := p.rt().StopContainer(ctx, &runtimev1.StopContainerRequest{Node: p.node(), PodUid: pod.GetUid(), Name: name, GracePeriodSeconds: grace})
	if err != nil {
		p.Fatalf("StopContainer %s with grace period %ds: %v", name, grace, err)
	}
	if st.GetState() != stateExited {
		p.Errorf("StopContainer %s answered %s, want its final status (EXITED)", name, describeStatus(st))
	}
	return st
}

func checkStopSIGTERM(p *probe) {
	pod := p.podWithImage()
	// sh runs a trap only between commands: it waits on a background sleep,
	// which a signal interrupts.
	p.start(pod, "polite", 0, "trap 'echo got-term; exit 0' TERM; echo ready; sleep 3600 & wait")
	p.waitLog(pod, "polite", "ready")
	st := p.stop(pod, "polite", 60)
	if st.GetExitCode() != 0 {
		p.Errorf("StopContainer answered %s; want exit code 0: the container exits 0 on SIGTERM", describeStatus(st))
	}
	listed := p.waitExited(pod, "polite", 0)
	if listed.GetExitCode() != 0 {
		p.Errorf("ListSandboxes lists %s, want exit code 0", describeStatus(listed))
	}
	if out := p.allLogs(pod, "polite"); !strings.Contains(out, "got-term") {
		p.Errorf("the container's log %q does not show that it got SIGTERM", out)
	}
}

func checkStopSIGKILL(p *probe) {
	pod := p.podWithImage()
	p.start(pod, "stubborn", 0, "trap '' TERM; echo ready; sleep 3600 & wait")
	p.waitLog(pod, "stubborn", "ready")
	st := p.stop(pod, "stubborn", 2)
	if !killed(st) {
		p.Errorf("StopContainer answered %s; want exit code 137 (or a reason saying it was killed)", describeStatus(st))
	}
	if listed := p.waitExited(pod, "stubborn", 0); !killed(listed) {
		p.Errorf("ListSandboxes lists %s; want exit code 137 (or a reason saying it was killed)", describeStatus(listed))
	}
}

// killed says whether an exit reads as SIGKILL's: 128+9, or a reason that
// says so.
func killed(st *runtimev1.ContainerStatus) bool {
	if st.GetState() != stateExited {
		return false
	}
	if st.GetExitCode() == 137 {
		return true
	}
	r := strings.ToLower(st.GetReason())
	return st.GetExitCode() != 0 && (strings.Contains(r, "kill") || strings.Contains(r, "signal"))
}

func checkStopRepeated(p *probe) {
	pod := p.podWithImage()
	p.start(pod, "done", 0, "exit 3")
	p.waitExited(pod, "done", 0)
	for i := 1; i <= 2; i++ {
		if st := p.stop(pod, "done", 1); st.GetExitCode() != 3 {
			p.Errorf("StopContainer #%d of an exited container answered %s; want its exit code 3", i, describeStatus(st))
		}
	}
}

func checkRemoveContainerRepeated(p *probe) {
	pod := p.podWithImage()
	p.runAttempts(pod, "old", "exit 1", "exit 0")
	for i := 1; i <= 2; i++ {
		ctx, cancel := p.call()
		_, err := p.rt().RemoveContainer(ctx, &runtimev1.RemoveContainerRequest{Node: p.node(), PodUid: pod.GetUid(), Name: "old", KeepAttempt: 1})
		cancel()
		if err != nil {
			p.Fatalf("RemoveContainer #%d keeping attempt 1: %v", i, err)
		}
		var kept []uint32
		for _, st := range p.attempts(pod, "old") {
			kept = append(kept, st.GetAttempt())
		}
		if len(kept) != 1 || kept[0] != 1 {
			p.Errorf("after RemoveContainer #%d keeping attempt 1, ListSandboxes lists attempts %v; want [1]", i, kept)
		}
	}
}
