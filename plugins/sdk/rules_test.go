package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// recordingRuntime answers every call it implements and records which
// reached it, and what the Exec it was given carried.
type recordingRuntime struct {
	runtimev1.UnimplementedRuntimeServer

	mu           sync.Mutex
	calls        []string
	failConfig   bool
	execReceived []*runtimev1.ExecRequest
}

func (r *recordingRuntime) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *recordingRuntime) reached() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func (r *recordingRuntime) Configure(context.Context, *runtimev1.ConfigureRequest) (*runtimev1.ConfigureResponse, error) {
	r.record("Configure")
	if r.failConfig {
		return nil, status.Error(codes.InvalidArgument, "config: refused")
	}
	return &runtimev1.ConfigureResponse{}, nil
}

func (r *recordingRuntime) GetNode(context.Context, *runtimev1.GetNodeRequest) (*runtimev1.Node, error) {
	r.record("GetNode")
	return &runtimev1.Node{Ready: true}, nil
}

func (r *recordingRuntime) RunSandbox(_ context.Context, req *runtimev1.RunSandboxRequest) (*runtimev1.Sandbox, error) {
	r.record("RunSandbox")
	return &runtimev1.Sandbox{Pod: req.GetPod(), Id: "sb"}, nil
}

func (r *recordingRuntime) RemoveSandbox(context.Context, *runtimev1.RemoveSandboxRequest) (*runtimev1.RemoveSandboxResponse, error) {
	r.record("RemoveSandbox")
	return &runtimev1.RemoveSandboxResponse{}, nil
}

func (r *recordingRuntime) StartContainer(context.Context, *runtimev1.StartContainerRequest) (*runtimev1.ContainerStatus, error) {
	r.record("StartContainer")
	return &runtimev1.ContainerStatus{}, nil
}

func (r *recordingRuntime) StopContainer(context.Context, *runtimev1.StopContainerRequest) (*runtimev1.ContainerStatus, error) {
	r.record("StopContainer")
	return &runtimev1.ContainerStatus{}, nil
}

func (r *recordingRuntime) DeletePod(context.Context, *runtimev1.DeletePodRequest) (*runtimev1.DeletePodResponse, error) {
	r.record("DeletePod")
	return &runtimev1.DeletePodResponse{}, nil
}

func (r *recordingRuntime) ContainerLogs(_ *runtimev1.ContainerLogsRequest, stream grpc.ServerStreamingServer[runtimev1.LogChunk]) error {
	r.record("ContainerLogs")
	return stream.Send(&runtimev1.LogChunk{Data: []byte("line\n")})
}

func (r *recordingRuntime) WatchContainers(_ *runtimev1.WatchContainersRequest, _ grpc.ServerStreamingServer[runtimev1.ContainerStatus]) error {
	r.record("WatchContainers")
	return nil
}

// Exec reads every request to the end of stdin, then answers exit code 0.
func (r *recordingRuntime) Exec(stream grpc.BidiStreamingServer[runtimev1.ExecRequest, runtimev1.ExecResponse]) error {
	r.record("Exec")
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.execReceived = append(r.execReceived, req)
		r.mu.Unlock()
		if req.GetStdinDone() {
			return stream.Send(&runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_ExitCode{ExitCode: 0}})
		}
	}
}

func (r *recordingRuntime) Attach(grpc.BidiStreamingServer[runtimev1.AttachRequest, runtimev1.AttachResponse]) error {
	r.record("Attach")
	return nil
}

func (r *recordingRuntime) PortForward(grpc.BidiStreamingServer[runtimev1.PortForwardRequest, runtimev1.PortForwardResponse]) error {
	r.record("PortForward")
	return nil
}

// serveWithRules serves register's service behind a fresh RequestRules, as
// an in-process harness does, and returns a connection to it.
func serveWithRules(t *testing.T, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "plugin.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer(sdk.NewRequestRules().ServerOptions()...)
	register(server)
	go func() { _ = server.Serve(lis) }()
	t.Cleanup(server.Stop)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func newRuntime(t *testing.T) (*recordingRuntime, runtimev1.RuntimeClient) {
	impl := &recordingRuntime{}
	conn := serveWithRules(t, func(s *grpc.Server) { runtimev1.RegisterRuntimeServer(s, impl) })
	return impl, runtimev1.NewRuntimeClient(conn)
}

func configure(t *testing.T, rt runtimev1.RuntimeClient, nodes ...string) {
	t.Helper()
	if _, err := rt.Configure(t.Context(), &runtimev1.ConfigureRequest{Nodes: nodes}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
}

// wantRefused fails unless err has code want and a message containing
// mention, and the call did not reach the plugin.
func wantRefused(t *testing.T, impl interface{ reached() []string }, what string, err error, want codes.Code, mention string) {
	t.Helper()
	if status.Code(err) != want || !strings.Contains(status.Convert(err).Message(), mention) {
		t.Errorf("%s: %v, want %s mentioning %q", what, err, want, mention)
	}
	if calls := impl.reached(); len(calls) != 0 {
		t.Errorf("%s reached the plugin: %v", what, calls)
	}
}

// firstStreamError is the error of a server stream's first message; nil
// when it sends one or ends cleanly.
func firstStreamError[T any](s grpc.ServerStreamingClient[T], err error) error {
	if err != nil {
		return err
	}
	if _, err := s.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// bidiFirstError opens a bidirectional stream, sends first and returns
// the error of the first answer; nil when there is one or the stream
// ends cleanly.
func bidiFirstError[Req, Resp any](open func(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[Req, Resp], error), ctx context.Context, first *Req) error {
	s, err := open(ctx)
	if err != nil {
		return err
	}
	if err := s.Send(first); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if _, err := s.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func TestCallsWithoutNodeAreRefused(t *testing.T) {
	impl, rt := newRuntime(t)
	ctx := t.Context()
	configure(t, rt, "node-a")
	impl.reached()

	_, err := rt.GetNode(ctx, &runtimev1.GetNodeRequest{})
	wantRefused(t, impl, "GetNode without node", err, codes.InvalidArgument, "node: must be set")
	_, err = rt.RunSandbox(ctx, &runtimev1.RunSandboxRequest{Pod: &runtimev1.PodRef{Uid: "u", Name: "p"}})
	wantRefused(t, impl, "RunSandbox without node", err, codes.InvalidArgument, "node: must be set")
	err = firstStreamError(rt.WatchContainers(ctx, &runtimev1.WatchContainersRequest{}))
	wantRefused(t, impl, "WatchContainers without node", err, codes.InvalidArgument, "node: must be set")
	err = firstStreamError(rt.ContainerLogs(ctx, &runtimev1.ContainerLogsRequest{PodUid: "u", Container: "app"}))
	wantRefused(t, impl, "ContainerLogs without node", err, codes.InvalidArgument, "node: must be set")
	err = bidiFirstError(rt.Exec, ctx, &runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Start{Start: &runtimev1.ExecStart{PodUid: "u", Container: "app", Command: []string{"true"}}}})
	wantRefused(t, impl, "Exec without node", err, codes.InvalidArgument, "node: must be set")
}

func TestCallsBeforeConfigureAreRefused(t *testing.T) {
	impl, rt := newRuntime(t)
	_, err := rt.GetNode(t.Context(), &runtimev1.GetNodeRequest{Node: "node-a"})
	wantRefused(t, impl, "GetNode before Configure", err, codes.FailedPrecondition, "call Configure first")

	// A Configure the plugin refuses serves nothing either.
	impl.failConfig = true
	if _, err := rt.Configure(t.Context(), &runtimev1.ConfigureRequest{Nodes: []string{"node-a"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("refused Configure: %v", err)
	}
	impl.reached()
	_, err = rt.GetNode(t.Context(), &runtimev1.GetNodeRequest{Node: "node-a"})
	wantRefused(t, impl, "GetNode after a refused Configure", err, codes.FailedPrecondition, "call Configure first")
}

func TestCallsForANodeNotServedAreRefused(t *testing.T) {
	impl, rt := newRuntime(t)
	ctx := t.Context()
	configure(t, rt, "node-a", "node-b")
	impl.reached()

	_, err := rt.GetNode(ctx, &runtimev1.GetNodeRequest{Node: "node-c"})
	wantRefused(t, impl, "GetNode of node-c", err, codes.NotFound, `node "node-c" is not served`)
	err = firstStreamError(rt.ContainerLogs(ctx, &runtimev1.ContainerLogsRequest{Node: "node-c", PodUid: "u", Container: "app"}))
	wantRefused(t, impl, "ContainerLogs of node-c", err, codes.NotFound, `node "node-c" is not served`)
	err = bidiFirstError(rt.PortForward, ctx, &runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_Start{Start: &runtimev1.PortForwardStart{Node: "node-c", PodUid: "u", Port: 80}}})
	wantRefused(t, impl, "PortForward of node-c", err, codes.NotFound, `node "node-c" is not served`)

	// Configure again: node-b goes, node-c comes.
	configure(t, rt, "node-a", "node-c")
	impl.reached()
	_, err = rt.GetNode(ctx, &runtimev1.GetNodeRequest{Node: "node-b"})
	wantRefused(t, impl, "GetNode of node-b after it was dropped", err, codes.NotFound, `node "node-b" is not served`)
	if _, err := rt.GetNode(ctx, &runtimev1.GetNodeRequest{Node: "node-c"}); err != nil {
		t.Errorf("GetNode of node-c after it came: %v", err)
	}
}

// A Configure naming no nodes leaves the choice of nodes to the plugin.
func TestConfigureWithoutNodesLetsEveryNodeThrough(t *testing.T) {
	impl, rt := newRuntime(t)
	configure(t, rt)
	if _, err := rt.GetNode(t.Context(), &runtimev1.GetNodeRequest{Node: "any"}); err != nil {
		t.Errorf("GetNode: %v", err)
	}
	if got := impl.reached(); len(got) != 2 || got[1] != "GetNode" {
		t.Errorf("reached %v, want Configure and GetNode", got)
	}
}

func TestConfigureWithAnEmptyNodeIsRefused(t *testing.T) {
	impl, rt := newRuntime(t)
	_, err := rt.Configure(t.Context(), &runtimev1.ConfigureRequest{Nodes: []string{"node-a", ""}})
	wantRefused(t, impl, "Configure with an empty node", err, codes.InvalidArgument, "nodes[1]: must not be empty")
}

func TestCallsWithoutPodUIDOrNamesAreRefused(t *testing.T) {
	impl, rt := newRuntime(t)
	ctx := t.Context()
	configure(t, rt, "node-a")
	impl.reached()
	const node = "node-a"
	pod := &runtimev1.PodRef{Uid: "u", Namespace: "default", Name: "p"}
	spec := &runtimev1.ContainerSpec{Name: "app", Image: "busybox"}

	for _, c := range []struct {
		what    string
		call    func() error
		mention string
	}{
		{"RunSandbox without pod", func() error {
			_, err := rt.RunSandbox(ctx, &runtimev1.RunSandboxRequest{Node: node})
			return err
		}, "pod.uid: must be set"},
		{"RunSandbox without pod UID", func() error {
			_, err := rt.RunSandbox(ctx, &runtimev1.RunSandboxRequest{Node: node, Pod: &runtimev1.PodRef{Name: "p"}})
			return err
		}, "pod.uid: must be set"},
		{"RunSandbox without pod name", func() error {
			_, err := rt.RunSandbox(ctx, &runtimev1.RunSandboxRequest{Node: node, Pod: &runtimev1.PodRef{Uid: "u"}})
			return err
		}, "pod.name: must be set"},
		{"RemoveSandbox without pod UID", func() error {
			_, err := rt.RemoveSandbox(ctx, &runtimev1.RemoveSandboxRequest{Node: node})
			return err
		}, "pod_uid: must be set"},
		{"StartContainer without pod UID", func() error {
			_, err := rt.StartContainer(ctx, &runtimev1.StartContainerRequest{Node: node, Pod: &runtimev1.PodRef{Name: "p"}, Container: spec})
			return err
		}, "pod.uid: must be set"},
		{"StartContainer without a ContainerSpec", func() error {
			_, err := rt.StartContainer(ctx, &runtimev1.StartContainerRequest{Node: node, Pod: pod})
			return err
		}, "container.name: must be set"},
		{"StartContainer without image", func() error {
			_, err := rt.StartContainer(ctx, &runtimev1.StartContainerRequest{Node: node, Pod: pod, Container: &runtimev1.ContainerSpec{Name: "app"}})
			return err
		}, "container.image: must be set"},
		{"StopContainer without name", func() error {
			_, err := rt.StopContainer(ctx, &runtimev1.StopContainerRequest{Node: node, PodUid: "u"})
			return err
		}, "name: must be set"},
		{"DeletePod without pod", func() error {
			_, err := rt.DeletePod(ctx, &runtimev1.DeletePodRequest{Node: node})
			return err
		}, "pod.uid: must be set"},
		{"CreatePod without pod_object", func() error {
			_, err := rt.CreatePod(ctx, &runtimev1.CreatePodRequest{Node: node})
			return err
		}, "pod_object: must be set"},
		{"ContainerLogs without pod UID", func() error {
			return firstStreamError(rt.ContainerLogs(ctx, &runtimev1.ContainerLogsRequest{Node: node, Container: "app"}))
		}, "pod_uid: must be set"},
		{"ContainerLogs without container", func() error {
			return firstStreamError(rt.ContainerLogs(ctx, &runtimev1.ContainerLogsRequest{Node: node, PodUid: "u"}))
		}, "container: must be set"},
	} {
		wantRefused(t, impl, c.what, c.call(), codes.InvalidArgument, c.mention)
	}
}

func TestStreamsWhoseFirstMessageIsWrongAreRefused(t *testing.T) {
	impl, rt := newRuntime(t)
	ctx := t.Context()
	configure(t, rt, "node-a")
	impl.reached()
	execStart := func(s *runtimev1.ExecStart) *runtimev1.ExecRequest {
		return &runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Start{Start: s}}
	}

	err := bidiFirstError(rt.Exec, ctx, &runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Stdin{Stdin: []byte("x")}})
	wantRefused(t, impl, "Exec starting with stdin", err, codes.InvalidArgument, "start: the first message of Exec must be an ExecStart")
	err = bidiFirstError(rt.Attach, ctx, &runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_StdinDone{StdinDone: true}})
	wantRefused(t, impl, "Attach starting with stdin_done", err, codes.InvalidArgument, "start: the first message of Attach must be an AttachStart")
	err = bidiFirstError(rt.PortForward, ctx, &runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_Data{Data: []byte("x")}})
	wantRefused(t, impl, "PortForward starting with data", err, codes.InvalidArgument, "start: the first message of PortForward must be a PortForwardStart")

	// A caller that closes its side without any message.
	s, err := rt.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.CloseSend()
	_, err = s.Recv()
	wantRefused(t, impl, "Exec without any message", err, codes.InvalidArgument, "start: the first message of Exec must be an ExecStart")

	err = bidiFirstError(rt.Exec, ctx, execStart(&runtimev1.ExecStart{Node: "node-a", PodUid: "u", Container: "app"}))
	wantRefused(t, impl, "Exec without command", err, codes.InvalidArgument, "command: must be set")
	err = bidiFirstError(rt.Exec, ctx, execStart(&runtimev1.ExecStart{Node: "node-a", Container: "app", Command: []string{"true"}}))
	wantRefused(t, impl, "Exec without pod UID", err, codes.InvalidArgument, "pod_uid: must be set")
	err = bidiFirstError(rt.Attach, ctx, &runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Start{Start: &runtimev1.AttachStart{Node: "node-a", PodUid: "u"}}})
	wantRefused(t, impl, "Attach without container", err, codes.InvalidArgument, "container: must be set")
	for _, port := range []int32{0, -1, 65536} {
		err = bidiFirstError(rt.PortForward, ctx, &runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_Start{Start: &runtimev1.PortForwardStart{Node: "node-a", PodUid: "u", Port: port}}})
		wantRefused(t, impl, fmt.Sprintf("PortForward to port %d", port), err, codes.InvalidArgument, "port: must be between 1 and 65535")
	}
}

func TestWellFormedCallsReachThePlugin(t *testing.T) {
	impl, rt := newRuntime(t)
	ctx := t.Context()
	configure(t, rt, "node-a")
	pod := &runtimev1.PodRef{Uid: "u", Namespace: "default", Name: "p"}

	sb, err := rt.RunSandbox(ctx, &runtimev1.RunSandboxRequest{Node: "node-a", Pod: pod})
	if err != nil || sb.GetPod().GetUid() != "u" {
		t.Fatalf("RunSandbox: %v, %v", sb, err)
	}
	logs, err := rt.ContainerLogs(ctx, &runtimev1.ContainerLogsRequest{Node: "node-a", PodUid: "u", Container: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if chunk, err := logs.Recv(); err != nil || string(chunk.GetData()) != "line\n" {
		t.Errorf("ContainerLogs: %q, %v", chunk.GetData(), err)
	}

	// The plugin receives the start it was sent, then what follows.
	exec, err := rt.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := &runtimev1.ExecStart{Node: "node-a", PodUid: "u", Container: "app", Command: []string{"cat"}, Stdin: true}
	for _, req := range []*runtimev1.ExecRequest{
		{Request: &runtimev1.ExecRequest_Start{Start: start}},
		{Request: &runtimev1.ExecRequest_Stdin{Stdin: []byte("hello")}},
		{Request: &runtimev1.ExecRequest_StdinDone{StdinDone: true}},
	} {
		if err := exec.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := exec.Recv()
	if err != nil || resp.GetExitCode() != 0 {
		t.Fatalf("Exec: %v, %v", resp, err)
	}
	if got := impl.reached(); strings.Join(got, " ") != "Configure RunSandbox ContainerLogs Exec" {
		t.Errorf("reached %v", got)
	}
	impl.mu.Lock()
	defer impl.mu.Unlock()
	if len(impl.execReceived) != 3 || impl.execReceived[0].GetStart().GetCommand()[0] != "cat" ||
		string(impl.execReceived[1].GetStdin()) != "hello" || !impl.execReceived[2].GetStdinDone() {
		t.Errorf("Exec received %v", impl.execReceived)
	}
}

// A plugin's own refusal passes unchanged.
func TestThePluginsOwnAnswersPass(t *testing.T) {
	_, rt := newRuntime(t)
	configure(t, rt, "node-a")
	_, err := rt.PullImage(t.Context(), &runtimev1.PullImageRequest{Node: "node-a", Image: "busybox"})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("PullImage the plugin does not implement: %v, want Unimplemented", err)
	}
}

// recordingNetwork records the calls that reach it.
type recordingNetwork struct {
	networkv1.UnimplementedNetworkServer
	mu    sync.Mutex
	calls []string
}

func (n *recordingNetwork) reached() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.calls
	n.calls = nil
	return out
}

func (n *recordingNetwork) record(call string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, call)
}

func (n *recordingNetwork) Configure(context.Context, *networkv1.ConfigureRequest) (*networkv1.ConfigureResponse, error) {
	n.record("Configure")
	return &networkv1.ConfigureResponse{}, nil
}

func (n *recordingNetwork) Status(context.Context, *networkv1.StatusRequest) (*networkv1.StatusResponse, error) {
	n.record("Status")
	return &networkv1.StatusResponse{Ready: true}, nil
}

func (n *recordingNetwork) Add(context.Context, *networkv1.AddRequest) (*networkv1.Result, error) {
	n.record("Add")
	return &networkv1.Result{}, nil
}

func (n *recordingNetwork) Del(context.Context, *networkv1.DelRequest) (*networkv1.DelResponse, error) {
	n.record("Del")
	return &networkv1.DelResponse{}, nil
}

func TestNetworkRules(t *testing.T) {
	impl := &recordingNetwork{}
	nw := networkv1.NewNetworkClient(serveWithRules(t, func(s *grpc.Server) { networkv1.RegisterNetworkServer(s, impl) }))
	ctx := t.Context()
	if _, err := nw.Configure(ctx, &networkv1.ConfigureRequest{Nodes: []string{"node-a"}}); err != nil {
		t.Fatal(err)
	}
	impl.reached()
	att := &networkv1.Attachment{ContainerId: "u", Ifname: "eth0"}

	_, err := nw.Status(ctx, &networkv1.StatusRequest{})
	wantRefused(t, impl, "Status without node", err, codes.InvalidArgument, "node: must be set")
	_, err = nw.Status(ctx, &networkv1.StatusRequest{Node: "node-b"})
	wantRefused(t, impl, "Status of node-b", err, codes.NotFound, `node "node-b" is not served`)
	_, err = nw.Add(ctx, &networkv1.AddRequest{Node: "node-a", Attachment: att})
	wantRefused(t, impl, "Add without netns_path", err, codes.InvalidArgument, "netns_path: must be set")
	_, err = nw.Add(ctx, &networkv1.AddRequest{Node: "node-a", NetnsPath: "/run/netns/x", Attachment: &networkv1.Attachment{Ifname: "eth0"}})
	wantRefused(t, impl, "Add without container_id", err, codes.InvalidArgument, "attachment.container_id: must be set")
	_, err = nw.Del(ctx, &networkv1.DelRequest{Node: "node-a", Attachment: &networkv1.Attachment{ContainerId: "u"}})
	wantRefused(t, impl, "Del without ifname", err, codes.InvalidArgument, "attachment.ifname: must be set")

	if _, err := nw.Add(ctx, &networkv1.AddRequest{Node: "node-a", NetnsPath: "/run/netns/x", Attachment: att}); err != nil {
		t.Errorf("Add: %v", err)
	}
	// Del needs no network namespace: it may be gone.
	if _, err := nw.Del(ctx, &networkv1.DelRequest{Node: "node-a", Attachment: att}); err != nil {
		t.Errorf("Del: %v", err)
	}
	if got := impl.reached(); strings.Join(got, " ") != "Add Del" {
		t.Errorf("reached %v, want Add and Del", got)
	}
}
