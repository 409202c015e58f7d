package conformance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// probe is one check in progress: what it calls the plugin with, and what
// went wrong.
type probe struct {
	suite    *suite
	check    Check
	ctx      context.Context
	errs     []error
	cleanups []func(context.Context) error
}

// pollInterval is how often a wait for a container's state lists sandboxes.
const pollInterval = 100 * time.Millisecond

func (p *probe) node() string { return p.suite.cfg.Node }

func (p *probe) image() string { return p.suite.cfg.Image }

func (p *probe) rt() runtimev1.RuntimeClient {
	p.requirePlugin()
	return p.suite.plugin.client()
}

// call returns a context for one call to the plugin.
func (p *probe) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.ctx, p.suite.cfg.Timeout)
}

// newPod names a pod with a fresh random UID, as the API server would.
func (p *probe) newPod() *runtimev1.PodRef {
	return &runtimev1.PodRef{Uid: newUID(), Namespace: "conformance", Name: p.check.Name}
}

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// removeWhenDone removes the pod's sandbox when the check ends.
func (p *probe) removeWhenDone(pod *runtimev1.PodRef) {
	p.requirePlugin()
	p.cleanup(func(ctx context.Context) error {
		_, err := p.suite.plugin.client().RemoveSandbox(ctx, &runtimev1.RemoveSandboxRequest{Node: p.node(), PodUid: pod.GetUid()})
		if err != nil {
			return fmt.Errorf("RemoveSandbox of pod %s: %w", pod.GetUid(), err)
		}
		return nil
	})
}

// runSandbox creates the pod's sandbox, removed when the check ends.
func (p *probe) runSandbox(pod *runtimev1.PodRef) *runtimev1.Sandbox {
	ctx, cancel := p.call()
	defer cancel()
	p.removeWhenDone(pod)
	sb, err := p.rt().RunSandbox(ctx, &runtimev1.RunSandboxRequest{Node: p.node(), Pod: pod})
	if err != nil {
		p.Fatalf("RunSandbox of pod %s: %v", pod.GetUid(), err)
	}
	return sb
}

// pull makes the image present.
func (p *probe) pull() {
	ctx, cancel := p.call()
	defer cancel()
	if _, err := p.rt().PullImage(ctx, &runtimev1.PullImageRequest{Node: p.node(), Image: p.image()}); err != nil {
		p.Fatalf("PullImage %s: %v", p.image(), err)
	}
}

// podWithImage pulls the image and runs a sandbox for a new pod: what every
// check that starts containers needs first.
func (p *probe) podWithImage() *runtimev1.PodRef {
	if p.image() == "" {
		p.Fatalf("not run: no image given to run containers with")
	}
	p.pull()
	pod := p.newPod()
	p.runSandbox(pod)
	return pod
}

func (p *probe) startRequest(pod *runtimev1.PodRef, name string, attempt uint32, script string) *runtimev1.StartContainerRequest {
	return &runtimev1.StartContainerRequest{
		Node:      p.node(),
		Pod:       pod,
		Attempt:   attempt,
		Container: &runtimev1.ContainerSpec{Name: name, Image: p.image(), Command: []string{"sh", "-c", script}},
	}
}

// start starts one attempt of a container running `sh -c script`.
func (p *probe) start(pod *runtimev1.PodRef, name string, attempt uint32, script string) *runtimev1.ContainerStatus {
	return p.startWith(p.startRequest(pod, name, attempt, script))
}

func (p *probe) startWith(req *runtimev1.StartContainerRequest) *runtimev1.ContainerStatus {
	ctx, cancel := p.call()
	defer cancel()
	st, err := p.rt().StartContainer(ctx, req)
	if err != nil {
		p.Fatalf("StartContainer %s attempt %d: %v", req.GetContainer().GetName(), req.GetAttempt(), err)
	}
	if st.GetId() == "" {
		p.Fatalf("StartContainer %s attempt %d answered no container id: %v", req.GetContainer().GetName(), req.GetAttempt(), st)
	}
	return st
}

// list returns the node's sandboxes.
func (p *probe) list() []*runtimev1.SandboxStatus {
	ctx, cancel := p.call()
	defer cancel()
	resp, err := p.rt().ListSandboxes(ctx, &runtimev1.ListSandboxesRequest{Node: p.node()})
	if err != nil {
		p.Fatalf("ListSandboxes: %v", err)
	}
	return resp.GetSandboxes()
}

// listed returns the pod's entry in ListSandboxes, nil when it has none.
func (p *probe) listed(pod *runtimev1.PodRef) *runtimev1.SandboxStatus {
	for _, sb := range p.list() {
		if sb.GetSandbox().GetPod().GetUid() == pod.GetUid() {
			return sb
		}
	}
	return nil
}

// attempts returns every listed attempt of a container of the pod.
func (p *probe) attempts(pod *runtimev1.PodRef, name string) []*runtimev1.ContainerStatus {
	var out []*runtimev1.ContainerStatus
	for _, c := range p.listed(pod).GetContainers() {
		if c.GetName() == name {
			out = append(out, c)
		}
	}
	return out
}

// attempt returns one listed attempt, nil when it is not listed.
func (p *probe) attempt(pod *runtimev1.PodRef, name string, attempt uint32) *runtimev1.ContainerStatus {
	for _, c := range p.attempts(pod, name) {
		if c.GetAttempt() == attempt {
			return c
		}
	}
	return nil
}

// waitState lists sandboxes until the attempt is in state, and returns it.
func (p *probe) waitState(pod *runtimev1.PodRef, name string, attempt uint32, state runtimev1.ContainerState) *runtimev1.ContainerStatus {
	deadline := time.Now().Add(p.suite.cfg.Timeout)
	for {
		st := p.attempt(pod, name, attempt)
		if st.GetState() == state {
			return st
		}
		if time.Now().After(deadline) {
			p.Fatalf("container %s attempt %d not %s in ListSandboxes within %v; last listed: %s",
				name, attempt, stateName(state), p.suite.cfg.Timeout, describeStatus(st))
		}
		p.sleep(pollInterval)
	}
}

// runAttempts runs one attempt of the container per script, 0, 1, …, each
// to its exit before the next.
func (p *probe) runAttempts(pod *runtimev1.PodRef, name string, scripts ...string) {
	for i, script := range scripts {
		p.start(pod, name, uint32(i), script)
		p.waitExited(pod, name, uint32(i))
	}
}

func (p *probe) waitExited(pod *runtimev1.PodRef, name string, attempt uint32) *runtimev1.ContainerStatus {
	return p.waitState(pod, name, attempt, runtimev1.ContainerState_CONTAINER_STATE_EXITED)
}

func (p *probe) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.ctx.Done():
		p.Fatalf("interrupted: %v", p.ctx.Err())
	case <-t.C:
	}
}

// logs reads a container's logs to the end of the stream.
func (p *probe) logs(req *runtimev1.ContainerLogsRequest) (string, error) {
	ctx, cancel := p.call()
	defer cancel()
	if req.Node == "" {
		req.Node = p.node()
	}
	stream, err := p.rt().ContainerLogs(ctx, req)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out.String(), nil
		}
		if err != nil {
			return out.String(), err
		}
		out.Write(chunk.GetData())
	}
}

// allLogs returns all of a container's newest attempt's output.
func (p *probe) allLogs(pod *runtimev1.PodRef, name string) string {
	out, err := p.logs(&runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: name, TailLines: -1})
	if err != nil {
		p.Fatalf("ContainerLogs of %s: %v", name, err)
	}
	return out
}

// waitLog reads the container's logs until they hold want: a script says
// it is ready (a trap set, say) by printing a line.
func (p *probe) waitLog(pod *runtimev1.PodRef, name, want string) {
	deadline := time.Now().Add(p.suite.cfg.Timeout)
	for {
		out := p.allLogs(pod, name)
		if strings.Contains(out, want) {
			return
		}
		if time.Now().After(deadline) {
			p.Fatalf("the logs of %s did not show %q within %v; they hold %q", name, want, p.suite.cfg.Timeout, out)
		}
		p.sleep(pollInterval)
	}
}

// wantCode fails the check unless err has the gRPC code want.
func (p *probe) wantCode(what string, err error, want codes.Code) {
	if got := status.Code(err); got != want {
		if err == nil {
			p.Errorf("%s: succeeded, want %s", what, want)
			return
		}
		p.Errorf("%s: %v, want %s", what, err, want)
	}
}

func stateName(s runtimev1.ContainerState) string {
	return strings.TrimPrefix(s.String(), "CONTAINER_STATE_")
}

// describeStatus is a container status, short, for failure messages.
func describeStatus(st *runtimev1.ContainerStatus) string {
	if st == nil {
		return "not listed"
	}
	s := fmt.Sprintf("%s attempt %d id %q %s", st.GetName(), st.GetAttempt(), st.GetId(), stateName(st.GetState()))
	if st.GetState() == runtimev1.ContainerState_CONTAINER_STATE_EXITED {
		s += fmt.Sprintf(" exit code %d reason %q", st.GetExitCode(), st.GetReason())
	}
	if st.GetMessage() != "" {
		s += fmt.Sprintf(" message %q", st.GetMessage())
	}
	return s
}
