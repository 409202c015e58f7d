// Package streams serves the bidirectional calls of the runtime protocol,
// Exec, Attach and PortForward, so that a runtime plugin deals in readers,
// writers and connections rather than in protocol messages.
//
// Each call's first request names what to run or connect to; the later
// ones carry stdin (or data), its end, and terminal resizes. Exec and
// Attach read the first request and return a Session: Stdin reads what the
// caller sends until it says it is done, OnResize applies terminal sizes,
// and Stdout and Stderr send responses. Forward serves a whole PortForward
// call over a connection the plugin dials.
package streams

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Session is the caller's side of an Exec or Attach call, as the command
// or the container sees it.
type Session struct {
	// Stdin reads what the caller sends, and ends (io.EOF) when the caller
	// is done with stdin or the call ends.
	Stdin io.ReadCloser
	// Stdout and Stderr send the output to the caller. They may be written
	// from different goroutines.
	Stdout, Stderr io.Writer

	resize *resizer
}

// OnResize has f apply each terminal size the caller sends, in order with
// stdin: a size sent before some input is applied before that input
// reaches Stdin. The last size sent before OnResize is applied at once.
func (s *Session) OnResize(f func(*runtimev1.TerminalSize)) { s.resize.set(f) }

// resizer holds the function that applies sizes, and the last size that
// came before there was one.
type resizer struct {
	mu      sync.Mutex
	f       func(*runtimev1.TerminalSize)
	pending *runtimev1.TerminalSize
}

func (r *resizer) set(f func(*runtimev1.TerminalSize)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.f = f
	if r.pending != nil {
		f(r.pending)
		r.pending = nil
	}
}

func (r *resizer) apply(size *runtimev1.TerminalSize) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		r.pending = size
		return
	}
	r.f(size)
}

// request is what a later request of any of the calls carries.
type request struct {
	data   []byte
	done   bool
	resize *runtimev1.TerminalSize
}

// pump reads the later requests of a call until it ends: data goes to w,
// which is closed when the caller is done sending or the call ends, and
// sizes to resize. It returns at the end of the call's requests, so its
// goroutine lives no longer than the call.
func pump(recv func() (request, error), w *io.PipeWriter, resize *resizer) {
	defer w.Close()
	for {
		r, err := recv()
		if err != nil {
			return
		}
		switch {
		case r.resize != nil:
			resize.apply(r.resize)
		case r.done:
			_ = w.Close()
		case len(r.data) > 0:
			// A reader that stopped reading (the command exited) makes
			// the write fail; the rest is dropped, as a pipe drops it.
			_, _ = w.Write(r.data)
		}
	}
}

// sender serializes the responses of a call: gRPC allows one sender at a
// time.
type sender[Resp any] struct {
	mu   sync.Mutex
	send func(*Resp) error
}

func (s *sender[Resp]) writer(wrap func([]byte) *Resp) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		// The message owns its bytes: the caller may reuse p.
		if err := s.send(wrap(append([]byte(nil), p...))); err != nil {
			return 0, err
		}
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// ExecSession is the session of an Exec call.
type ExecSession struct {
	Session
	out *sender[runtimev1.ExecResponse]
}

// Exit sends the command's exit code, the call's last response.
func (s *ExecSession) Exit(code int32) error {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	return s.out.send(&runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_ExitCode{ExitCode: code}})
}

// Exec reads the first request of an Exec call and returns it with the
// call's session. A first request that is not an ExecStart fails with
// InvalidArgument.
func Exec(srv grpc.BidiStreamingServer[runtimev1.ExecRequest, runtimev1.ExecResponse]) (*runtimev1.ExecStart, *ExecSession, error) {
	first, err := srv.Recv()
	if err != nil {
		return nil, nil, fmt.Errorf("receive the exec's first request: %w", err)
	}
	start := first.GetStart()
	if start == nil {
		return nil, nil, status.Error(codes.InvalidArgument, "the first request of Exec must be an ExecStart")
	}
	out := &sender[runtimev1.ExecResponse]{send: srv.Send}
	s := &ExecSession{out: out}
	s.Session = newSession(func() (request, error) {
		r, err := srv.Recv()
		return request{data: r.GetStdin(), done: r.GetStdinDone(), resize: r.GetResize()}, err
	})
	s.Stdout = out.writer(func(p []byte) *runtimev1.ExecResponse {
		return &runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_Stdout{Stdout: p}}
	})
	s.Stderr = out.writer(func(p []byte) *runtimev1.ExecResponse {
		return &runtimev1.ExecResponse{Response: &runtimev1.ExecResponse_Stderr{Stderr: p}}
	})
	return start, s, nil
}

// Attach reads the first request of an Attach call and returns it with the
// call's session. A first request that is not an AttachStart fails with
// InvalidArgument.
func Attach(srv grpc.BidiStreamingServer[runtimev1.AttachRequest, runtimev1.AttachResponse]) (*runtimev1.AttachStart, *Session, error) {
	first, err := srv.Recv()
	if err != nil {
		return nil, nil, fmt.Errorf("receive the attach's first request: %w", err)
	}
	start := first.GetStart()
	if start == nil {
		return nil, nil, status.Error(codes.InvalidArgument, "the first request of Attach must be an AttachStart")
	}
	s := newSession(func() (request, error) {
		r, err := srv.Recv()
		return request{data: r.GetStdin(), done: r.GetStdinDone(), resize: r.GetResize()}, err
	})
	out := &sender[runtimev1.AttachResponse]{send: srv.Send}
	s.Stdout = out.writer(func(p []byte) *runtimev1.AttachResponse {
		return &runtimev1.AttachResponse{Response: &runtimev1.AttachResponse_Stdout{Stdout: p}}
	})
	s.Stderr = out.writer(func(p []byte) *runtimev1.AttachResponse {
		return &runtimev1.AttachResponse{Response: &runtimev1.AttachResponse_Stderr{Stderr: p}}
	})
	return start, &s, nil
}

func newSession(recv func() (request, error)) Session {
	r, w := io.Pipe()
	resize := &resizer{}
	go pump(recv, w, resize)
	return Session{Stdin: r, resize: resize}
}

// Forward serves a PortForward call: it reads the first request, asks dial
// for the connection it names (dial's error, with its status code, is the
// call's), then copies the caller's data to the connection, half-closing it
// at data_done, and the connection's data to the caller, until the
// connection has nothing more to send.
func Forward(srv grpc.BidiStreamingServer[runtimev1.PortForwardRequest, runtimev1.PortForwardResponse], dial func(*runtimev1.PortForwardStart) (io.ReadWriteCloser, error)) error {
	first, err := srv.Recv()
	if err != nil {
		return fmt.Errorf("receive the port-forward's first request: %w", err)
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "the first request of PortForward must be a PortForwardStart")
	}
	conn, err := dial(start)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		// Ends with the call: Recv fails once the handler has returned.
		for {
			r, err := srv.Recv()
			if err != nil {
				return
			}
			if r.GetDataDone() {
				closeWrite(conn)
				continue
			}
			if _, err := conn.Write(r.GetData()); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if serr := srv.Send(&runtimev1.PortForwardResponse{Data: append([]byte(nil), buf[:n]...)}); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return status.Errorf(codes.Unavailable, "read from port %d: %v", start.GetPort(), err)
		}
	}
}

// closeWrite half-closes a connection that can, and closes one that cannot.
func closeWrite(c io.ReadWriteCloser) {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
		return
	}
	_ = c.Close()
}
