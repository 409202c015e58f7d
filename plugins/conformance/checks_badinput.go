package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedlet/fedlet/plugins/pluginhost"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Bad input: refused with the code that says why, and never a crash.
var badInputChecks = []Check{
	{
		Name: "bad-input-no-node",
		Rule: "every call names the node it is for: a call without one fails with InvalidArgument, and the plugin keeps serving (same process)",
		run:  checkNoNode,
	},
	{
		Name: "bad-input-no-pod-uid",
		Rule: "the pod UID is the pod's identity: a call without one fails with InvalidArgument, and the plugin keeps serving (same process)",
		run:  checkNoPodUID,
	},
	{
		Name: "bad-input-unknown-container",
		Rule: "StopContainer and ContainerLogs of a container the node does not have fail with NotFound, and the plugin keeps serving (same process)",
		run:  checkUnknownContainer,
	},
	{
		Name: "bad-input-no-image",
		Rule: "StartContainer of a ContainerSpec without an image (or without a name, or with none at all) fails with InvalidArgument, and the plugin keeps serving (same process)",
		run:  checkNoImage,
	},
}

// placeholderImage stands for an image in calls that must fail before any
// image is looked at.
const placeholderImage = "registry.invalid/fedlet/conformance:1"

func (p *probe) imageOrPlaceholder() string {
	if p.image() != "" {
		return p.image()
	}
	return placeholderImage
}

// badCall is one call that must fail with a given code.
type badCall struct {
	what string
	want codes.Code
	call func(ctx context.Context, rt runtimev1.RuntimeClient) error
}

// expectRefused makes each call, checks its code, then checks that the
// plugin process that answered them still serves: it answers Describe, and
// the plugin host saw no exit or restart.
func (p *probe) expectRefused(calls []badCall) {
	p.requirePlugin()
	events, unsubscribe := p.suite.plugin.rt.Subscribe()
	defer unsubscribe()
	if ev := <-events; ev.Kind != pluginhost.Started {
		p.Fatalf("the plugin is not up: %s", ev.Message)
	}
	pid, err := p.suite.plugin.pid()
	if err != nil {
		p.Fatalf("%v", err)
	}

	for _, c := range calls {
		ctx, cancel := p.call()
		err := c.call(ctx, p.rt())
		cancel()
		if status.Code(err) == codes.Unavailable && c.want != codes.Unavailable {
			// The plugin host says the process went away: the call crashed
			// it. Wait for the restart, so that the next check finds a
			// plugin to call.
			down, werr := p.suite.waitUp(p.ctx)
			if werr != nil {
				p.Errorf("%v", werr)
			}
			p.Fatalf("the plugin process did not survive %s: %v; the plugin host says: %s", c.what, err, down)
		}
		p.wantCode(c.what, err, c.want)
	}

	ctx, cancel := p.call()
	defer cancel()
	if _, err := p.rt().Describe(ctx, &runtimev1.DescribeRequest{}); err != nil {
		p.Fatalf("Describe after the bad input: %v", err)
	}
	select {
	case ev := <-events:
		p.Fatalf("the plugin process did not survive the bad input: the plugin host reports %s: %s", ev.Kind, ev.Message)
	default:
	}
	if now, err := p.suite.plugin.pid(); err != nil || now != pid {
		p.Fatalf("the plugin process did not survive the bad input: pid %d before, now %d (%v)", pid, now, err)
	}
}

// firstRecv returns the error of a server stream's first message, which is
// where a stream's refusal arrives; nil when the stream sends a message or
// ends cleanly.
func firstRecv[T any](recv func() (T, error)) error {
	_, err := recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func checkNoNode(p *probe) {
	pod := p.newPod()
	// Removed on the real node in case the plugin created it after all.
	p.removeWhenDone(pod)
	spec := &runtimev1.ContainerSpec{Name: "app", Image: p.imageOrPlaceholder()}
	inv := codes.InvalidArgument
	p.expectRefused([]badCall{
		{"GetNode without node", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.GetNode(ctx, &runtimev1.GetNodeRequest{})
			return err
		}},
		{"PullImage without node", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.PullImage(ctx, &runtimev1.PullImageRequest{Image: p.imageOrPlaceholder()})
			return err
		}},
		{"RunSandbox without node", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.RunSandbox(ctx, &runtimev1.RunSandboxRequest{Pod: pod})
			return err
		}},
		{"ListSandboxes without node", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.ListSandboxes(ctx, &runtimev1.ListSandboxesRequest{})
			return err
		}},
		{"StartContainer without node", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.StartContainer(ctx, &runtimev1.StartContainerRequest{Pod: pod, Container: spec})
			return err
		}},
		{"StopContainer without node", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.StopContainer(ctx, &runtimev1.StopContainerRequest{PodUid: pod.GetUid(), Name: "app"})
			return err
		}},
		{"RemoveContainer without node", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.RemoveContainer(ctx, &runtimev1.RemoveContainerRequest{PodUid: pod.GetUid(), Name: "app"})
			return err
		}},
		{"RemoveSandbox without node", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.RemoveSandbox(ctx, &runtimev1.RemoveSandboxRequest{PodUid: pod.GetUid()})
			return err
		}},
		{"WatchContainers without node", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			s, err := rt.WatchContainers(ctx, &runtimev1.WatchContainersRequest{})
			if err != nil {
				return err
			}
			return firstRecv(s.Recv)
		}},
		{"ContainerLogs without node", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			s, err := rt.ContainerLogs(ctx, &runtimev1.ContainerLogsRequest{PodUid: pod.GetUid(), Container: "app"})
			if err != nil {
				return err
			}
			return firstRecv(s.Recv)
		}},
	})
}

func checkNoPodUID(p *probe) {
	noUID := &runtimev1.PodRef{Namespace: "conformance", Name: p.check.Name}
	spec := &runtimev1.ContainerSpec{Name: "app", Image: p.imageOrPlaceholder()}
	node := p.node()
	inv := codes.InvalidArgument
	p.expectRefused([]badCall{
		{"RunSandbox without pod UID", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.RunSandbox(ctx, &runtimev1.RunSandboxRequest{Node: node, Pod: noUID})
			return err
		}},
		{"RunSandbox without pod", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.RunSandbox(ctx, &runtimev1.RunSandboxRequest{Node: node})
			return err
		}},
		{"RemoveSandbox without pod UID", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.RemoveSandbox(ctx, &runtimev1.RemoveSandboxRequest{Node: node})
			return err
		}},
		{"StartContainer without pod UID", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.StartContainer(ctx, &runtimev1.StartContainerRequest{Node: node, Pod: noUID, Container: spec})
			return err
		}},
		{"StartContainer without pod", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.StartContainer(ctx, &runtimev1.StartContainerRequest{Node: node, Container: spec})
			return err
		}},
		{"StopContainer without pod UID", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.StopContainer(ctx, &runtimev1.StopContainerRequest{Node: node, Name: "app"})
			return err
		}},
		{"RemoveContainer without pod UID", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.RemoveContainer(ctx, &runtimev1.RemoveContainerRequest{Node: node, Name: "app"})
			return err
		}},
		{"ContainerLogs without pod UID", inv, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			s, err := rt.ContainerLogs(ctx, &runtimev1.ContainerLogsRequest{Node: node, Container: "app"})
			if err != nil {
				return err
			}
			return firstRecv(s.Recv)
		}},
	})
}

func checkUnknownContainer(p *probe) {
	pod := p.newPod()
	p.runSandbox(pod)
	unknownPod := newUID()
	node := p.node()
	nf := codes.NotFound
	var calls []badCall
	for _, c := range []struct{ where, uid string }{
		{"in a running sandbox", pod.GetUid()},
		{"of a pod with no sandbox", unknownPod},
	} {
		calls = append(calls,
			badCall{fmt.Sprintf("StopContainer of an unknown container %s", c.where), nf, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
				_, err := rt.StopContainer(ctx, &runtimev1.StopContainerRequest{Node: node, PodUid: c.uid, Name: "unknown", GracePeriodSeconds: 1})
				return err
			}},
			badCall{fmt.Sprintf("ContainerLogs of an unknown container %s", c.where), nf, func(ctx context.Context, rt runtimev1.RuntimeClient) error {
				s, err := rt.ContainerLogs(ctx, &runtimev1.ContainerLogsRequest{Node: node, PodUid: c.uid, Container: "unknown", TailLines: -1})
				if err != nil {
					return err
				}
				return firstRecv(s.Recv)
			}},
		)
	}
	p.expectRefused(calls)
}

func checkNoImage(p *probe) {
	pod := p.newPod()
	p.runSandbox(pod)
	if p.image() != "" {
		p.pull()
	}
	node := p.node()
	inv := codes.InvalidArgument
	start := func(spec *runtimev1.ContainerSpec) func(ctx context.Context, rt runtimev1.RuntimeClient) error {
		return func(ctx context.Context, rt runtimev1.RuntimeClient) error {
			_, err := rt.StartContainer(ctx, &runtimev1.StartContainerRequest{Node: node, Pod: pod, Container: spec})
			return err
		}
	}
	p.expectRefused([]badCall{
		{"StartContainer of a ContainerSpec without image", inv, start(&runtimev1.ContainerSpec{Name: "app", Command: []string{"sh", "-c", "true"}})},
		{"StartContainer without a ContainerSpec", inv, start(nil)},
		{"StartContainer of a ContainerSpec without name", inv, start(&runtimev1.ContainerSpec{Image: p.imageOrPlaceholder(), Command: []string{"sh", "-c", "true"}})},
	})
	if n := len(p.listed(pod).GetContainers()); n != 0 {
		p.Errorf("the refused StartContainer calls left %d containers in the sandbox", n)
	}
}
