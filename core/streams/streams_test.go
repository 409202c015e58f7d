package streams

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// fakeRuntime serves the streaming calls in process, each as a small
// script over what the client sends.
type fakeRuntime struct {
	runtimev1.UnimplementedRuntimeServer

	mu    sync.Mutex
	start any // the first message of the last call
}

func (f *fakeRuntime) record(start any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.start = start
}

func (f *fakeRuntime) started() any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.start
}

// Exec runs a few commands: "cat" echoes stdin to stdout then exits 0,
// "fail" writes to both streams and exits 3, "resize" answers each
// terminal size on stdout until stdin ends, "vanish" ends without an exit
// code, "refuse" answers FailedPrecondition, "spin" writes until cancelled.
func (f *fakeRuntime) Exec(stream grpc.BidiStreamingServer[runtimev1.ExecRequest, runtimev1.ExecResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	f.record(start)
	out := func(s string) error {
		return stream.Send(&runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_Stdout{Stdout: []byte(s)}})
	}
	exit := func(code int32) error {
		return stream.Send(&runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_ExitCode{ExitCode: code}})
	}
	switch strings.Join(start.GetCommand(), " ") {
	case "cat", "resize":
		for {
			req, err := stream.Recv()
			if err != nil {
				return err
			}
			switch r := req.Request.(type) {
			case *runtimev1.ExecRequest_Stdin:
				if err := out(string(r.Stdin)); err != nil {
					return err
				}
			case *runtimev1.ExecRequest_Resize:
				if err := out(fmtSize(r.Resize)); err != nil {
					return err
				}
			case *runtimev1.ExecRequest_StdinDone:
				return exit(0)
			}
		}
	case "fail":
		_ = out("out")
		_ = stream.Send(&runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_Stderr{Stderr: []byte("err")}})
		return exit(3)
	case "vanish":
		return nil
	case "refuse":
		return status.Error(codes.FailedPrecondition, "container app is not running")
	case "spin":
		for {
			if err := out("x"); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
	}
	return status.Error(codes.InvalidArgument, "unknown command")
}

func fmtSize(s *runtimev1.TerminalSize) string {
	return strings.Repeat("w", int(s.GetWidth())) + "|" + strings.Repeat("h", int(s.GetHeight())) + "\n"
}

// Attach sends one line on each stream, echoes stdin until stdin_done,
// then ends as a container that exits does.
func (f *fakeRuntime) Attach(stream grpc.BidiStreamingServer[runtimev1.AttachRequest, runtimev1.AttachResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	f.record(first.GetStart())
	_ = stream.Send(&runtimev1.AttachResponse{Response: &runtimev1.AttachResponse_Stdout{Stdout: []byte("hello\n")}})
	_ = stream.Send(&runtimev1.AttachResponse{Response: &runtimev1.AttachResponse_Stderr{Stderr: []byte("oops\n")}})
	if !first.GetStart().GetStdin() {
		return nil
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		if d := req.GetStdin(); d != nil {
			_ = stream.Send(&runtimev1.AttachResponse{Response: &runtimev1.AttachResponse_Stdout{Stdout: d}})
		}
		if req.GetStdinDone() {
			return nil
		}
	}
}

// PortForward is an echo server upper-casing what it gets, closing after
// data_done.
func (f *fakeRuntime) PortForward(stream grpc.BidiStreamingServer[runtimev1.PortForwardRequest, runtimev1.PortForwardResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	f.record(first.GetStart())
	if first.GetStart().GetPort() != 80 {
		return status.Error(codes.Unavailable, "nothing listens on that port")
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		if req.GetDataDone() {
			return nil
		}
		if err := stream.Send(&runtimev1.PortForwardResponse{Data: bytes.ToUpper(req.GetData())}); err != nil {
			return err
		}
	}
}

// ContainerLogs sends three chunks of the container "app", NotFound for
// any other.
func (f *fakeRuntime) ContainerLogs(req *runtimev1.ContainerLogsRequest, stream grpc.ServerStreamingServer[runtimev1.LogChunk]) error {
	f.record(req)
	if req.GetContainer() != "app" {
		return status.Errorf(codes.NotFound, "container %s not found", req.GetContainer())
	}
	for _, s := range []string{"one\n", "two\n", "three\n"} {
		if err := stream.Send(&runtimev1.LogChunk{Data: []byte(s)}); err != nil {
			return err
		}
	}
	return nil
}

// serve starts fake on an in-process connection and returns its client.
func serve(t *testing.T, fake *fakeRuntime) runtimev1.RuntimeClient {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	runtimev1.RegisterRuntimeServer(srv, fake)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimev1.NewRuntimeClient(conn)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestExecCopiesStdinAndOutput(t *testing.T) {
	fake := &fakeRuntime{}
	client := serve(t, fake)
	var stdout bytes.Buffer
	start := &runtimev1.ExecStart{Node: "node-a", PodUid: "uid-1", Container: "app", Command: []string{"cat"}}
	code, err := Exec(testContext(t), client, start, strings.NewReader("hello from stdin"), &stdout, nil)
	if err != nil || code != 0 {
		t.Fatalf("Exec = %d, %v; want 0, nil", code, err)
	}
	if stdout.String() != "hello from stdin" {
		t.Errorf("stdout = %q", stdout.String())
	}
	got := fake.started().(*runtimev1.ExecStart)
	if got.GetNode() != "node-a" || got.GetPodUid() != "uid-1" || got.GetContainer() != "app" || !got.GetStdin() {
		t.Errorf("the runtime got start %v; want node-a, uid-1, app, with stdin", got)
	}
	if start.GetStdin() {
		t.Error("Exec changed the caller's start message")
	}
}

func TestExecReturnsTheExitCodeAndSeparatesStreams(t *testing.T) {
	fake := &fakeRuntime{}
	client := serve(t, fake)
	var stdout, stderr bytes.Buffer
	code, err := Exec(testContext(t), client, &runtimev1.ExecStart{Command: []string{"fail"}}, nil, &stdout, &stderr)
	if err != nil || code != 3 {
		t.Fatalf("Exec = %d, %v; want 3, nil", code, err)
	}
	if stdout.String() != "out" || stderr.String() != "err" {
		t.Errorf("stdout %q, stderr %q; want out, err", stdout.String(), stderr.String())
	}
	if fake.started().(*runtimev1.ExecStart).GetStdin() {
		t.Error("start says stdin without one")
	}
}

func TestExecForwardsTerminalSizes(t *testing.T) {
	fake := &fakeRuntime{}
	client := serve(t, fake)
	sizes := make(chan remotecommand.TerminalSize, 2)
	sizes <- remotecommand.TerminalSize{Width: 3, Height: 2} // taken as the size at start
	sizes <- remotecommand.TerminalSize{Width: 1, Height: 1}
	stdin, typing := io.Pipe()
	var stdout syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := Exec(testContext(t), client, &runtimev1.ExecStart{Command: []string{"resize"}, Tty: true}, stdin, &stdout, nil, WithResize(sizes))
		done <- err
	}()
	waitFor(t, func() bool { return stdout.String() == "w|h\n" })
	typing.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if size := fake.started().(*runtimev1.ExecStart).GetSize(); size.GetWidth() != 3 || size.GetHeight() != 2 {
		t.Errorf("size at start = %v; want the first size sent, 3x2", size)
	}
}

func TestExecErrors(t *testing.T) {
	client := serve(t, &fakeRuntime{})
	ctx := testContext(t)

	_, err := Exec(ctx, client, &runtimev1.ExecStart{Command: []string{"refuse"}}, nil, nil, nil)
	if status.Code(err) != codes.FailedPrecondition || err.Error() != "container app is not running" {
		t.Errorf("refused exec = %v (code %s); want the runtime's message with FailedPrecondition", err, status.Code(err))
	}
	_, err = Exec(ctx, client, &runtimev1.ExecStart{Command: []string{"vanish"}}, nil, nil, nil)
	if !errors.Is(err, ErrNoExitCode) {
		t.Errorf("exec without an exit code = %v; want ErrNoExitCode", err)
	}
	_, err = Exec(ctx, client, &runtimev1.ExecStart{Command: []string{"spin"}}, nil, failingWriter{}, nil)
	if !errors.Is(err, ErrOutputClosed) {
		t.Errorf("exec whose output fails = %v; want ErrOutputClosed", err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = Exec(short, client, &runtimev1.ExecStart{Command: []string{"spin"}}, nil, io.Discard, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("exec past its deadline = %v; want the context's error", err)
	}
}

func TestAttach(t *testing.T) {
	fake := &fakeRuntime{}
	client := serve(t, fake)
	var stdout, stderr bytes.Buffer
	err := Attach(testContext(t), client, &runtimev1.AttachStart{Node: "node-a", PodUid: "uid-1", Container: "app"}, strings.NewReader("typed\n"), &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "hello\ntyped\n" || stderr.String() != "oops\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if !fake.started().(*runtimev1.AttachStart).GetStdin() {
		t.Error("start does not say stdin")
	}
	if err := Attach(testContext(t), client, &runtimev1.AttachStart{}, nil, failingWriter{}, nil); !errors.Is(err, ErrOutputClosed) {
		t.Errorf("attach whose output fails = %v; want ErrOutputClosed", err)
	}
}

func TestPortForward(t *testing.T) {
	fake := &fakeRuntime{}
	client := serve(t, fake)
	conn := &fakeConn{in: strings.NewReader("ping")}
	if err := PortForward(testContext(t), client, &runtimev1.PortForwardStart{Node: "node-a", PodUid: "uid-1", Port: 80}, conn); err != nil {
		t.Fatal(err)
	}
	if conn.out.String() != "PING" {
		t.Errorf("the port answered %q; want PING", conn.out.String())
	}
	err := PortForward(testContext(t), client, &runtimev1.PortForwardStart{Port: 81}, &fakeConn{in: strings.NewReader("")})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("forward to a closed port = %v; want Unavailable", err)
	}
}

func TestLogs(t *testing.T) {
	fake := &fakeRuntime{}
	client := serve(t, fake)
	var out bytes.Buffer
	req := &runtimev1.ContainerLogsRequest{Node: "node-a", PodUid: "uid-1", Container: "app", TailLines: 2}
	if err := Logs(testContext(t), client, req, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "one\ntwo\nthree\n" {
		t.Errorf("logs = %q", out.String())
	}
	if got := fake.started().(*runtimev1.ContainerLogsRequest); got.GetTailLines() != 2 || got.GetPodUid() != "uid-1" {
		t.Errorf("the runtime got %v", got)
	}
	err := Logs(testContext(t), client, &runtimev1.ContainerLogsRequest{Container: "other"}, &out)
	if status.Code(err) != codes.NotFound || err.Error() != "container other not found" {
		t.Errorf("logs of an unknown container = %v; want NotFound with the runtime's message", err)
	}
	if err := Logs(testContext(t), client, req, failingWriter{}); !errors.Is(err, ErrOutputClosed) {
		t.Errorf("logs whose output fails = %v; want ErrOutputClosed", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

type fakeConn struct {
	in  io.Reader
	out bytes.Buffer
}

func (c *fakeConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error) { return c.out.Write(p) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
