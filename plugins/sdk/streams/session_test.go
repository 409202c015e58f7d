package streams_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/streams"
)

// echoRuntime's Exec echoes stdin to stdout, noting each terminal size
// with the input it has seen by then, and exits 7; its PortForward
// forwards to an echo connection.
type echoRuntime struct {
	runtimev1.UnimplementedRuntimeServer
	mu    sync.Mutex
	sizes []string
}

func (e *echoRuntime) Exec(srv grpc.BidiStreamingServer[runtimev1.ExecRequest, runtimev1.ExecResponse]) error {
	start, s, err := streams.Exec(srv)
	if err != nil {
		return err
	}
	var seen strings.Builder
	s.OnResize(func(sz *runtimev1.TerminalSize) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.sizes = append(e.sizes, fmt.Sprintf("%dx%d after %q", sz.GetWidth(), sz.GetHeight(), seen.String()))
	})
	buf := make([]byte, 1)
	for {
		n, err := s.Stdin.Read(buf)
		if n > 0 {
			e.mu.Lock()
			seen.Write(buf[:n])
			e.mu.Unlock()
			_, _ = s.Stdout.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	fmt.Fprintf(s.Stderr, "ran %s", start.GetCommand()[0])
	return s.Exit(7)
}

func (e *echoRuntime) PortForward(srv grpc.BidiStreamingServer[runtimev1.PortForwardRequest, runtimev1.PortForwardResponse]) error {
	return streams.Forward(srv, func(start *runtimev1.PortForwardStart) (io.ReadWriteCloser, error) {
		return net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", start.GetPort()))
	})
}

// echoServer echoes each connection until its peer half-closes it, then
// closes it; it returns its port.
func echoServer(t *testing.T) int32 {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	return int32(lis.Addr().(*net.TCPAddr).Port)
}

func serve(t *testing.T, impl runtimev1.RuntimeServer) runtimev1.RuntimeClient {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	runtimev1.RegisterRuntimeServer(srv, impl)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return runtimev1.NewRuntimeClient(conn)
}

// TestExecSession: stdin reaches the command, a resize before the stdin
// sent after it, stdin ends at stdin_done, and the output and the exit
// code come back.
func TestExecSession(t *testing.T) {
	impl := &echoRuntime{}
	call, err := serve(t, impl).Exec(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []*runtimev1.ExecRequest{
		{Request: &runtimev1.ExecRequest_Start{Start: &runtimev1.ExecStart{Command: []string{"echo"}}}},
		{Request: &runtimev1.ExecRequest_Stdin{Stdin: []byte("ab")}},
		{Request: &runtimev1.ExecRequest_Resize{Resize: &runtimev1.TerminalSize{Width: 80, Height: 24}}},
		{Request: &runtimev1.ExecRequest_Stdin{Stdin: []byte("c")}},
		{Request: &runtimev1.ExecRequest_StdinDone{StdinDone: true}},
	} {
		if err := call.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr strings.Builder
	code := int32(-1)
	for {
		resp, err := call.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		stdout.Write(resp.GetStdout())
		stderr.Write(resp.GetStderr())
		if r, ok := resp.GetResponse().(*runtimev1.ExecResponse_ExitCode); ok {
			code = r.ExitCode
		}
	}
	if stdout.String() != "abc" || stderr.String() != "ran echo" || code != 7 {
		t.Errorf("stdout %q, stderr %q, exit code %d; want %q, %q, 7", stdout.String(), stderr.String(), code, "abc", "ran echo")
	}
	impl.mu.Lock()
	defer impl.mu.Unlock()
	// Applied before the input sent after it was read (the input before
	// it may still be in the command's hands).
	if len(impl.sizes) != 1 || !strings.HasPrefix(impl.sizes[0], "80x24 after ") || strings.Contains(impl.sizes[0], "c") {
		t.Errorf("sizes %q, want one, 80x24, applied before the stdin sent after it was read", impl.sizes)
	}
}

// TestExecFirstMessage: a first request that is not a start is refused.
func TestExecFirstMessage(t *testing.T) {
	call, err := serve(t, &echoRuntime{}).Exec(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := call.Send(&runtimev1.ExecRequest{Request: &runtimev1.ExecRequest_Stdin{Stdin: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Recv(); err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Errorf("first request stdin: %v, want InvalidArgument", err)
	}
}

// TestForward: data goes to a real TCP connection, data_done half-closes it, and
// what it sends comes back until it closes.
func TestForward(t *testing.T) {
	port := echoServer(t)
	call, err := serve(t, &echoRuntime{}).PortForward(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []*runtimev1.PortForwardRequest{
		{Request: &runtimev1.PortForwardRequest_Start{Start: &runtimev1.PortForwardStart{Port: port}}},
		{Request: &runtimev1.PortForwardRequest_Data{Data: []byte("ping")}},
	} {
		if err := call.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := call.Recv()
	if err != nil || string(resp.GetData()) != "ping" {
		t.Fatalf("first answer %q, %v; want the echo ping", resp.GetData(), err)
	}
	if err := call.Send(&runtimev1.PortForwardRequest{Request: &runtimev1.PortForwardRequest_DataDone{DataDone: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after data_done: %v, want the stream to end", err)
	}
}
