package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Exec: a command beside a running container's own, as `kubectl exec`.
var execChecks = []Check{
	{
		Name: "exec-output",
		Rule: "Exec runs a command in a running container; the responses carry its stdout and stderr apart and, last, its exit code: nothing follows it",
		run:  checkExecOutput,
	},
	{
		Name: "exec-ends-with-command",
		Rule: "Exec ends once its command has exited, with the output written until then: a child the command leaves running, which keeps its stdout open, does not hold the call open",
		run:  checkExecEndsWithCommand,
	},
	{
		Name: "exec-stdin",
		Rule: "later Exec requests carry the command's stdin and its end (stdin_done); without stdin the command's stdin is empty",
		run:  checkExecStdin,
	},
	{
		Name: "exec-tty",
		Rule: "with tty the command gets a terminal of the size given at start, resized by later requests, and its stdout and stderr are one stream",
		run:  checkExecTTY,
	},
	{
		Name: "exec-not-running",
		Rule: "Exec in a container that does not run (it has exited) fails with FailedPrecondition, and the plugin keeps serving (same process)",
		run:  checkExecNotRunning,
	},
	{
		Name: "exec-unknown-container",
		Rule: "Exec in a container the node does not have fails with NotFound, and the plugin keeps serving (same process)",
		run:  checkExecUnknownContainer,
	},
	{
		Name: "exec-no-command",
		Rule: "Exec without a command is a request that lacks a field: it fails with InvalidArgument, and the plugin keeps serving (same process)",
		run:  checkExecNoCommand,
	},
}

// sleeper starts a container that does nothing for an hour, and waits
// until it runs: something to exec in and attach to.
func (p *probe) sleeper(pod *runtimev1.PodRef, name string) {
	p.start(pod, name, 0, "exec sleep 3600")
	p.waitState(pod, name, 0, stateRunning)
}

// openStreamFunc opens a bidirectional stream of the runtime client, as
// its Exec, Attach and PortForward methods do.
type openStreamFunc[Req, Resp any] func(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[Req, Resp], error)

// bidi is a bidirectional call in progress, cancelled when the check ends.
type bidi[Req, Resp any] struct {
	p      *probe
	what   string
	stream grpc.BidiStreamingClient[Req, Resp]
}

// openBidi opens a bidirectional call, bounded by the per-call timeout, and
// sends its first request.
func openBidi[Req, Resp any](p *probe, what string, open openStreamFunc[Req, Resp], first *Req) *bidi[Req, Resp] {
	ctx, cancel := p.call()
	p.cleanup(func(context.Context) error { cancel(); return nil })
	stream, err := open(ctx)
	if err != nil {
		p.Fatalf("%s: %v", what, err)
	}
	b := &bidi[Req, Resp]{p: p, what: what, stream: stream}
	b.send(first)
	return b
}

// send sends one request. A stream the plugin has ended takes no more; why
// it ended is for the next read to say.
func (b *bidi[Req, Resp]) send(req *Req) {
	if err := b.stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		b.p.Fatalf("%s: send: %v", b.what, err)
	}
}

// read hands responses to add until done says so (nil) or the stream ends:
// io.EOF when it ended cleanly, else its error.
func (b *bidi[Req, Resp]) read(add func(*Resp), done func() bool) error {
	for done == nil || !done() {
		resp, err := b.stream.Recv()
		if err != nil {
			return err
		}
		add(resp)
	}
	return nil
}

// readToEnd reads until the stream ends, and fails the check unless it
// ends cleanly.
func (b *bidi[Req, Resp]) readToEnd(add func(*Resp), sofar func() string) {
	if err := b.read(add, nil); !errors.Is(err, io.EOF) {
		b.p.Fatalf("%s did not end cleanly within %v: %v (received so far: %s)", b.what, b.p.suite.cfg.Timeout, err, sofar())
	}
}

// firstAnswer opens a bidirectional call, sends its first request and
// returns the error of the first answer, which is where a refusal arrives;
// nil when the plugin answers with a response or ends the call cleanly.
func firstAnswer[Req, Resp any](ctx context.Context, open openStreamFunc[Req, Resp], first *Req) error {
	stream, err := open(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(first); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return firstRecv(stream.Recv)
}

// execOutput is what an Exec call answered.
type execOutput struct {
	stdout, stderr strings.Builder
	exitCode       int32
	exited         bool     // the exit code came
	afterExit      []string // responses after the exit code: none are allowed
}

func (o *execOutput) add(resp *runtimev1.ExecResponse) {
	if o.exited {
		o.afterExit = append(o.afterExit, fmt.Sprint(resp))
		return
	}
	switch r := resp.GetResponse().(type) {
	case *runtimev1.ExecResponse_Stdout:
		o.stdout.Write(r.Stdout)
	case *runtimev1.ExecResponse_Stderr:
		o.stderr.Write(r.Stderr)
	case *runtimev1.ExecResponse_ExitCode:
		o.exitCode, o.exited = r.ExitCode, true
	}
}

func (o *execOutput) String() string {
	s := fmt.Sprintf("stdout %q, stderr %q", o.stdout.String(), o.stderr.String())
	if o.exited {
		s += fmt.Sprintf(", exit code %d", o.exitCode)
	}
	return s
}

func execStart(start *runtimev1.ExecStart) *runtimev1.ExecRequest {
	return &runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Start{Start: start}}
}

func execStdin(data string) *runtimev1.ExecRequest {
	return &runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Stdin{Stdin: []byte(data)}}
}

var execStdinDone = &runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_StdinDone{StdinDone: true}}

// exec runs a command in the pod's container: it opens the call, sends the
// rest of the requests and reads the answer to its end.
func (p *probe) exec(pod *runtimev1.PodRef, container string, start *runtimev1.ExecStart, rest ...*runtimev1.ExecRequest) *execOutput {
	start.Node, start.PodUid, start.Container = p.node(), pod.GetUid(), container
	what := fmt.Sprintf("Exec %q in %s", start.GetCommand(), container)
	call := openBidi(p, what, p.rt().Exec, execStart(start))
	for _, req := range rest {
		call.send(req)
	}
	out := &execOutput{}
	call.readToEnd(out.add, out.String)
	p.wantExited(what, out)
	return out
}

// wantExited fails the check unless the exec's last response was its exit
// code.
func (p *probe) wantExited(what string, out *execOutput) {
	if !out.exited {
		p.Fatalf("%s ended without an exit code (%s)", what, out)
	}
	if len(out.afterExit) > 0 {
		p.Errorf("%s sent %d responses after the exit code, want none: %v", what, len(out.afterExit), out.afterExit)
	}
}

func checkExecEndsWithCommand(p *probe) {
	pod := p.podWithImage()
	p.sleeper(pod, "target")
	out := p.exec(pod, "target", &runtimev1.ExecStart{Command: []string{"sh", "-c", "echo started; sleep 3600 &"}})
	if out.stdout.String() != "started\n" || out.exitCode != 0 {
		p.Errorf("exec answered %s; want stdout %q and exit code 0", out, "started\n")
	}
}

func checkExecOutput(p *probe) {
	pod := p.podWithImage()
	p.sleeper(pod, "target")
	out := p.exec(pod, "target", &runtimev1.ExecStart{Command: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
	if out.stdout.String() != "out\n" || out.stderr.String() != "err\n" || out.exitCode != 3 {
		p.Errorf("exec answered %s; want stdout %q, stderr %q, exit code 3", out, "out\n", "err\n")
	}
}

func checkExecStdin(p *probe) {
	pod := p.podWithImage()
	p.sleeper(pod, "target")
	out := p.exec(pod, "target", &runtimev1.ExecStart{Command: []string{"cat"}, Stdin: true},
		execStdin("one\n"), execStdin("two\n"), execStdinDone)
	if out.stdout.String() != "one\ntwo\n" || out.stderr.String() != "" || out.exitCode != 0 {
		p.Errorf("cat with stdin %q then stdin_done answered %s; want stdout %q, nothing on stderr, exit code 0",
			"one\ntwo\n", out, "one\ntwo\n")
	}
	// Without stdin, cat reads an empty stdin and ends at once.
	out = p.exec(pod, "target", &runtimev1.ExecStart{Command: []string{"cat"}})
	if out.stdout.String() != "" || out.exitCode != 0 {
		p.Errorf("cat without stdin answered %s; want no output and exit code 0", out)
	}
}

func checkExecTTY(p *probe) {
	pod := p.podWithImage()
	p.sleeper(pod, "target")
	// Echo off first, so that the line sent later does not show; the size
	// again once that line has come, after the resize.
	start := &runtimev1.ExecStart{
		Node: p.node(), PodUid: pod.GetUid(), Container: "target",
		Command: []string{"sh", "-c", "stty -echo; stty size; echo err >&2; read line; stty size"},
		Tty:     true, Stdin: true,
		Size: &runtimev1.TerminalSize{Width: 100, Height: 40},
	}
	call := openBidi(p, "Exec with tty", p.rt().Exec, execStart(start))
	out := &execOutput{}
	// A terminal ends lines with CR LF; that is its business, not the
	// protocol's.
	stdout := func() string { return strings.ReplaceAll(out.stdout.String(), "\r", "") }
	if err := call.read(out.add, func() bool { return strings.Contains(stdout(), "err\n") || out.exited }); err != nil {
		p.Fatalf("Exec with tty: %v (received so far: %s)", err, out)
	}
	call.send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Resize{Resize: &runtimev1.TerminalSize{Width: 120, Height: 50}}})
	call.send(execStdin("\n"))
	call.readToEnd(out.add, out.String)
	p.wantExited("Exec with tty", out)
	const want = "40 100\nerr\n50 120\n"
	if stdout() != want || out.stderr.String() != "" || out.exitCode != 0 {
		p.Errorf("`stty size` in a terminal of 100x40, then of 120x50, with `echo err >&2` between, answered %s;"+
			" want stdout %q (CRs aside), nothing on stderr, exit code 0", out, want)
	}
}

func checkExecNotRunning(p *probe) {
	pod := p.podWithImage()
	p.start(pod, "done", 0, "true")
	p.waitExited(pod, "done", 0)
	p.expectRefused([]badCall{
		{"Exec in an exited container", codes.FailedPrecondition, execRefusal(p.node(), pod.GetUid(), "done", "true")},
	})
}

func checkExecUnknownContainer(p *probe) {
	pod := p.newPod()
	p.runSandbox(pod)
	nf := codes.NotFound
	p.expectRefused([]badCall{
		{"Exec in an unknown container in a running sandbox", nf, execRefusal(p.node(), pod.GetUid(), "unknown", "true")},
		{"Exec in an unknown container of a pod with no sandbox", nf, execRefusal(p.node(), newUID(), "unknown", "true")},
	})
}

func checkExecNoCommand(p *probe) {
	pod := p.podWithImage()
	p.sleeper(pod, "target")
	p.expectRefused([]badCall{
		{"Exec without a command in a running container", codes.InvalidArgument, execRefusal(p.node(), pod.GetUid(), "target")},
	})
}

// execRefusal is an Exec call that must be refused.
func execRefusal(node, podUID, container string, command ...string) func(context.Context, runtimev1.RuntimeClient) error {
	start := &runtimev1.ExecStart{Node: node, PodUid: podUID, Container: container, Command: command}
	return func(ctx context.Context, rt runtimev1.RuntimeClient) error {
		return firstAnswer(ctx, rt.Exec, execStart(start))
	}
}
