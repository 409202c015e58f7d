package conformance

import (
	"context"
	"strings"

	"google.golang.org/grpc"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

const (
	stateRunning = runtimev1.ContainerState_CONTAINER_STATE_RUNNING
	stateExited  = runtimev1.ContainerState_CONTAINER_STATE_EXITED
)

// Containers: started once per attempt, their exits reported.
var containerChecks = []Check{
	{
		Name: "watch-confirms-registration",
		Rule: "the plugin sends WatchContainers' response headers once the watch is registered, before any event, so that a caller can list without missing one",
		run:  checkWatchConfirms,
	},
	{
		Name: "container-exit-completed",
		Rule: "WatchContainers streams a status each time a container of the node starts or exits; a container that exits 0 is EXITED with exit code 0 and reason Completed, in the watch and in ListSandboxes",
		run:  checkExitCompleted,
	},
	{
		Name: "container-exit-code",
		Rule: "an exited container reports its exit code, and a reason other than Completed when the code is not 0",
		run:  checkExitCode,
	},
	{
		Name: "container-start-idempotent",
		Rule: "StartContainer creates and starts one attempt of a container; if that attempt exists already, it returns its status and starts nothing (only an attempt recorded and never started, a call cut short, is started)",
		run:  checkStartIdempotent,
	},
	{
		Name: "container-new-attempt",
		Rule: "containers are identified by (pod UID, container name, attempt): a new attempt is a new container, and ListSandboxes lists every attempt the sandbox still holds",
		run:  checkNewAttempt,
	},
}

// watch opens WatchContainers for the node; the stream ends with the check's
// per-call timeout.
func (p *probe) watch() (grpc.ServerStreamingClient[runtimev1.ContainerStatus], context.CancelFunc) {
	ctx, cancel := p.call()
	stream, err := p.rt().WatchContainers(ctx, &runtimev1.WatchContainersRequest{Node: p.node()})
	if err != nil {
		cancel()
		p.Fatalf("WatchContainers: %v", err)
	}
	return stream, cancel
}

// watchUntil reads the watch until a status of the attempt in state arrives.
func (p *probe) watchUntil(stream grpc.ServerStreamingClient[runtimev1.ContainerStatus], pod *runtimev1.PodRef, name string, attempt uint32, state runtimev1.ContainerState) *runtimev1.ContainerStatus {
	var seen []string
	for {
		st, err := stream.Recv()
		if err != nil {
			p.Fatalf("WatchContainers ended before a status of %s attempt %d in state %s (statuses of it seen: %v): %v",
				name, attempt, stateName(state), seen, err)
		}
		if st.GetPod().GetUid() != pod.GetUid() || st.GetName() != name || st.GetAttempt() != attempt {
			continue
		}
		if st.GetState() == state {
			return st
		}
		seen = append(seen, stateName(st.GetState()))
	}
}

func checkWatchConfirms(p *probe) {
	stream, stop := p.watch()
	defer stop()
	// Nothing runs yet: only the plugin's own headers can answer.
	if _, err := stream.Header(); err != nil {
		p.Fatalf("no response headers on an idle WatchContainers within the call timeout: %v", err)
	}
	// And the confirmed watch is live: a container started now is seen.
	pod := p.podWithImage()
	p.start(pod, "after-headers", 0, "true")
	p.watchUntil(stream, pod, "after-headers", 0, stateExited)
}

func checkExitCompleted(p *probe) {
	pod := p.podWithImage()
	stream, stop := p.watch()
	defer stop()
	started := p.start(pod, "echo", 0, "echo hello")

	watched := p.watchUntil(stream, pod, "echo", 0, stateExited)
	if watched.GetId() != started.GetId() {
		p.Errorf("WatchContainers reported container id %q, StartContainer answered %q", watched.GetId(), started.GetId())
	}
	if watched.GetExitCode() != 0 || watched.GetReason() != "Completed" {
		p.Errorf("WatchContainers reported %s, want exit code 0 and reason Completed", describeStatus(watched))
	}
	listed := p.waitExited(pod, "echo", 0)
	if listed.GetId() != started.GetId() || listed.GetExitCode() != 0 || listed.GetReason() != "Completed" {
		p.Errorf("ListSandboxes lists %s, want id %q with exit code 0 and reason Completed", describeStatus(listed), started.GetId())
	}
	if listed.GetFinishedAtUnixNano() == 0 || listed.GetStartedAtUnixNano() == 0 {
		p.Errorf("ListSandboxes lists the exited container with start time %d and finish time %d, want both set",
			listed.GetStartedAtUnixNano(), listed.GetFinishedAtUnixNano())
	}
}

func checkExitCode(p *probe) {
	pod := p.podWithImage()
	p.start(pod, "fail", 0, "exit 3")
	st := p.waitExited(pod, "fail", 0)
	if st.GetExitCode() != 3 {
		p.Errorf("exit code %d, want 3 (%s)", st.GetExitCode(), describeStatus(st))
	}
	if st.GetReason() == "" || st.GetReason() == "Completed" {
		p.Errorf("reason %q for exit code 3, want one that says it failed (the kubelet's is Error)", st.GetReason())
	}
}

func checkStartIdempotent(p *probe) {
	pod := p.podWithImage()
	// Each start of the container writes one line: a second start would
	// show in its log.
	const script = "echo started"
	first := p.start(pod, "once", 0, script)
	second := p.start(pod, "once", 0, script)
	if second.GetId() != first.GetId() {
		p.Errorf("a repeated StartContainer of attempt 0 answered container id %q, the first %q", second.GetId(), first.GetId())
	}
	exited := p.waitExited(pod, "once", 0)
	third := p.start(pod, "once", 0, script)
	if third.GetId() != first.GetId() {
		p.Errorf("StartContainer of attempt 0 after it exited answered container id %q, the first %q", third.GetId(), first.GetId())
	}
	if third.GetState() != stateExited || third.GetStartedAtUnixNano() != exited.GetStartedAtUnixNano() {
		p.Errorf("StartContainer of attempt 0 after it exited answered %s started at %d; want the exited attempt, started at %d, not a new start",
			describeStatus(third), third.GetStartedAtUnixNano(), exited.GetStartedAtUnixNano())
	}
	// Following ends when the attempt exits: if it was started again, it
	// waits for that run too.
	out, err := p.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "once", TailLines: -1, Follow: true})
	if err != nil {
		p.Fatalf("ContainerLogs: %v", err)
	}
	if n := strings.Count(out, "started\n"); n != 1 {
		p.Errorf("the container ran %d times after three StartContainer calls of the same attempt (its log: %q), want once", n, out)
	}
	if n := len(p.attempts(pod, "once")); n != 1 {
		p.Errorf("ListSandboxes lists %d entries of the container, want one attempt", n)
	}
	if st := p.attempt(pod, "once", 0); st.GetState() != stateExited || st.GetStartedAtUnixNano() != exited.GetStartedAtUnixNano() {
		p.Errorf("ListSandboxes lists %s started at %d; want the first run, started at %d", describeStatus(st), st.GetStartedAtUnixNano(), exited.GetStartedAtUnixNano())
	}
}

func checkNewAttempt(p *probe) {
	pod := p.podWithImage()
	a0 := p.start(pod, "retry", 0, "exit 1")
	p.waitExited(pod, "retry", 0)
	a1 := p.start(pod, "retry", 1, "exit 0")
	if a1.GetId() == a0.GetId() {
		p.Errorf("attempts 0 and 1 have the same container id %q", a0.GetId())
	}
	if a1.GetAttempt() != 1 {
		p.Errorf("StartContainer of attempt 1 answered attempt %d", a1.GetAttempt())
	}
	p.waitExited(pod, "retry", 1)
	listed := map[uint32]*runtimev1.ContainerStatus{}
	for _, st := range p.attempts(pod, "retry") {
		listed[st.GetAttempt()] = st
	}
	for attempt, want := range map[uint32]*runtimev1.ContainerStatus{0: a0, 1: a1} {
		got := listed[attempt]
		if got == nil {
			p.Errorf("ListSandboxes does not list attempt %d", attempt)
			continue
		}
		if got.GetId() != want.GetId() {
			p.Errorf("ListSandboxes lists attempt %d with id %q, StartContainer answered %q", attempt, got.GetId(), want.GetId())
		}
	}
	if st := listed[0]; st != nil && st.GetExitCode() != 1 {
		p.Errorf("attempt 0 lists exit code %d, want 1: an attempt keeps its own exit", st.GetExitCode())
	}
}
