package conformance

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Attach: a running container's own streams, as `kubectl attach`.
var attachChecks = []Check{
	{
		Name: "attach-stdin-once",
		Rule: "Attach with stdin writes to the stdin of a container started with stdin; with stdin_once, stdin_done ends it; the responses carry the container's output from the moment of attaching, and the stream ends when the container exits",
		run:  checkAttachStdinOnce,
	},
	{
		Name: "attach-output",
		Rule: "Attach without stdin carries the container's stdout and stderr apart, from the moment of attaching (not what came before), and the stream ends when the container exits",
		run:  checkAttachOutput,
	},
	{
		Name: "attach-stdin-refused",
		Rule: "Attach with stdin to a container not started with stdin fails with FailedPrecondition, and the plugin keeps serving (same process)",
		run:  checkAttachStdinRefused,
	},
	{
		Name: "attach-not-running",
		Rule: "Attach to a container that does not run (it has exited) fails with FailedPrecondition, and the plugin keeps serving (same process)",
		run:  checkAttachNotRunning,
	},
}

// attachOutput is what an Attach call answered.
type attachOutput struct {
	stdout, stderr strings.Builder
}

func (o *attachOutput) add(resp *runtimev1.AttachResponse) {
	o.stdout.Write(resp.GetStdout())
	o.stderr.Write(resp.GetStderr())
}

func (o *attachOutput) String() string {
	return fmt.Sprintf("stdout %q, stderr %q", o.stdout.String(), o.stderr.String())
}

func attachStart(start *runtimev1.AttachStart) *runtimev1.AttachRequest {
	return &runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Start{Start: start}}
}

// attach opens an Attach call to the pod's container.
func (p *probe) attach(pod *runtimev1.PodRef, container string, stdin bool) *bidi[runtimev1.AttachRequest, runtimev1.AttachResponse] {
	what := fmt.Sprintf("Attach to %s (stdin %v)", container, stdin)
	return openBidi(p, what, p.rt().Attach, attachStart(&runtimev1.AttachStart{
		Node: p.node(), PodUid: pod.GetUid(), Container: container, Stdin: stdin,
	}))
}

func checkAttachStdinOnce(p *probe) {
	pod := p.podWithImage()
	req := p.startRequest(pod, "reader", 0, "echo ready; cat; echo bye")
	req.Container.Stdin, req.Container.StdinOnce = true, true
	p.startWith(req)
	p.waitLog(pod, "reader", "ready")

	call := p.attach(pod, "reader", true)
	call.send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Stdin{Stdin: []byte("hello\n")}})
	call.send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_StdinDone{StdinDone: true}})
	out := &attachOutput{}
	call.readToEnd(out.add, out.String)
	if out.stdout.String() != "hello\nbye\n" || out.stderr.String() != "" {
		p.Errorf("attached with stdin %q then stdin_done, the stream carried %s; want stdout %q (the echoed input, then bye; not ready, which came before) and nothing on stderr",
			"hello\n", out, "hello\nbye\n")
	}
	st := p.waitExited(pod, "reader", 0)
	if st.GetExitCode() != 0 {
		p.Errorf("the container lists %s, want exit code 0: its stdin ended", describeStatus(st))
	}
	if logs := p.allLogs(pod, "reader"); logs != "ready\nhello\nbye\n" {
		p.Errorf("the container's log %q, want %q", logs, "ready\nhello\nbye\n")
	}
}

func checkAttachOutput(p *probe) {
	pod := p.podWithImage()
	// It prints on both streams until SIGTERM, then says bye. sh runs the
	// trap once the sleep is over.
	p.start(pod, "ticker", 0, "trap 'echo bye; exit 0' TERM; echo ready; while :; do echo tick; echo tock >&2; sleep 0.2; done")
	p.waitLog(pod, "ticker", "ready")

	call := p.attach(pod, "ticker", false)
	out := &attachOutput{}
	// Output printed after attaching comes.
	if err := call.read(out.add, func() bool {
		return strings.Contains(out.stdout.String(), "tick\n") && strings.Contains(out.stderr.String(), "tock\n")
	}); err != nil {
		p.Fatalf("Attach to a container printing on stdout and stderr: %v (received so far: %s)", err, out)
	}
	// And the stream ends when the container exits.
	p.stop(pod, "ticker", 60)
	call.readToEnd(out.add, out.String)

	stdout := strings.Split(strings.TrimSuffix(out.stdout.String(), "\n"), "\n")
	if last := stdout[len(stdout)-1]; last != "bye" {
		p.Errorf("attached stdout %q does not end with the container's last line, bye", out.stdout.String())
	}
	for _, line := range stdout[:len(stdout)-1] {
		if line != "tick" {
			p.Errorf("attached stdout %q holds %q; want only tick lines then bye: output from the moment of attaching, stdout alone", out.stdout.String(), line)
			break
		}
	}
	for _, line := range strings.Split(strings.TrimSuffix(out.stderr.String(), "\n"), "\n") {
		if line != "tock" {
			p.Errorf("attached stderr %q holds %q; want only tock lines: stderr alone", out.stderr.String(), line)
			break
		}
	}
}

func checkAttachStdinRefused(p *probe) {
	pod := p.podWithImage()
	p.sleeper(pod, "no-stdin")
	p.expectRefused([]badCall{
		{"Attach with stdin to a running container started without stdin", codes.FailedPrecondition, attachRefusal(p.node(), pod.GetUid(), "no-stdin", true)},
	})
}

func checkAttachNotRunning(p *probe) {
	pod := p.podWithImage()
	p.start(pod, "done", 0, "true")
	p.waitExited(pod, "done", 0)
	p.expectRefused([]badCall{
		{"Attach to an exited container", codes.FailedPrecondition, attachRefusal(p.node(), pod.GetUid(), "done", false)},
	})
}

// attachRefusal is an Attach call that must be refused.
func attachRefusal(node, podUID, container string, stdin bool) func(context.Context, runtimev1.RuntimeClient) error {
	start := attachStart(&runtimev1.AttachStart{Node: node, PodUid: podUID, Container: container, Stdin: stdin})
	return func(ctx context.Context, rt runtimev1.RuntimeClient) error {
		return firstAnswer(ctx, rt.Attach, start)
	}
}
