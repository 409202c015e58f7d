package conformance

import (
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Logs, as `kubectl logs` shows them.
var logChecks = []Check{
	{
		Name: "logs-output",
		Rule: "ContainerLogs streams a container's output; once its exit is reported, all of it",
		run:  checkLogsOutput,
	},
	{
		Name: "logs-tail",
		Rule: "tail_lines gives the last N lines only; negative for all",
		run:  checkLogsTail,
	},
	{
		Name: "logs-timestamps",
		Rule: "timestamps prefixes each line with its RFC 3339 time, as `kubectl logs --timestamps`",
		run:  checkLogsTimestamps,
	},
	{
		Name: "logs-follow",
		Rule: "follow streams output as it comes, and the stream ends when the container has exited",
		run:  checkLogsFollow,
	},
	{
		Name: "logs-previous",
		Rule: "previous gives the attempt before the newest, as `kubectl logs --previous`",
		run:  checkLogsPrevious,
	},
	{
		Name: "logs-not-started",
		Rule: "ContainerLogs of a container that was never started fails with NotFound",
		run:  checkLogsNotStarted,
	},
}

const threeLines = "echo one; echo two; echo three"

// exitedWithOutput starts a container printing one, two and three, and
// waits for its exit.
func (p *probe) exitedWithOutput() *runtimev1.PodRef {
	pod := p.podWithImage()
	p.start(pod, "talker", 0, threeLines)
	p.waitExited(pod, "talker", 0)
	return pod
}

func checkLogsOutput(p *probe) {
	pod := p.exitedWithOutput()
	if out := p.allLogs(pod, "talker"); out != "one\ntwo\nthree\n" {
		p.Errorf("logs %q, want %q", out, "one\ntwo\nthree\n")
	}
}

func checkLogsTail(p *probe) {
	pod := p.exitedWithOutput()
	for _, c := range []struct {
		tail int64
		want string
	}{
		{2, "two\nthree\n"},
		{10, "one\ntwo\nthree\n"},
		{-1, "one\ntwo\nthree\n"},
	} {
		out, err := p.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "talker", TailLines: c.tail})
		if err != nil {
			p.Fatalf("ContainerLogs with tail_lines %d: %v", c.tail, err)
		}
		if out != c.want {
			p.Errorf("logs with tail_lines %d = %q, want %q", c.tail, out, c.want)
		}
	}
}

func checkLogsTimestamps(p *probe) {
	pod := p.exitedWithOutput()
	out, err := p.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "talker", TailLines: -1, Timestamps: true})
	if err != nil {
		p.Fatalf("ContainerLogs with timestamps: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{"one", "two", "three"}
	if len(lines) != len(want) {
		p.Fatalf("logs with timestamps = %q, want %d lines", out, len(want))
	}
	for i, line := range lines {
		ts, text, ok := strings.Cut(line, " ")
		if !ok || text != want[i] {
			p.Errorf("line %d %q is not \"<time> %s\"", i+1, line, want[i])
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			p.Errorf("line %d %q: its time is not RFC 3339: %v", i+1, line, err)
		}
	}
}

func checkLogsFollow(p *probe) {
	pod := p.podWithImage()
	p.start(pod, "slow", 0, "echo first; sleep 1; echo second")
	out, err := p.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "slow", TailLines: -1, Follow: true})
	if err != nil {
		p.Fatalf("ContainerLogs with follow (it must end by itself once the container exits, within %v): %v (output so far %q)",
			p.suite.cfg.Timeout, err, out)
	}
	if out != "first\nsecond\n" {
		p.Errorf("followed logs = %q, want %q: all output, ending when the container exits", out, "first\nsecond\n")
	}
	if st := p.attempt(pod, "slow", 0); st.GetState() != stateExited {
		p.Errorf("the follow ended while the container is %s", describeStatus(st))
	}
}

func checkLogsPrevious(p *probe) {
	pod := p.podWithImage()
	p.runAttempts(pod, "app", "echo attempt-0", "echo attempt-1")
	out, err := p.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app", TailLines: -1, Previous: true})
	if err != nil {
		p.Fatalf("ContainerLogs with previous: %v", err)
	}
	if out != "attempt-0\n" {
		p.Errorf("previous logs = %q, want %q", out, "attempt-0\n")
	}
	if out := p.allLogs(pod, "app"); out != "attempt-1\n" {
		p.Errorf("logs = %q, want the newest attempt's %q", out, "attempt-1\n")
	}
}

func checkLogsNotStarted(p *probe) {
	pod := p.newPod()
	p.runSandbox(pod)
	_, err := p.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "never-started", TailLines: -1})
	p.wantCode("ContainerLogs of a container never started, in a running sandbox", err, codes.NotFound)
}
