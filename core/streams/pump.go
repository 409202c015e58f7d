package streams

import (
	"context"
	"io"
	"sync"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// chunkSize is the most stdin or forwarded data one message carries.
const chunkSize = 32 * 1024

// Option changes how Exec or Attach runs.
type Option func(*options)

type options struct {
	resize <-chan remotecommand.TerminalSize
}

// WithResize forwards the terminal sizes received on sizes to the runtime
// until the call returns. With Exec and a terminal, the first size is also
// the command's size at start (Exec waits up to a second for it).
func WithResize(sizes <-chan remotecommand.TerminalSize) Option {
	return func(o *options) { o.resize = sizes }
}

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// sender serialises Send: gRPC allows one sender at a time, and stdin and
// resizes come from two goroutines.
type sender[Req any] struct {
	mu   sync.Mutex
	send func(*Req) error
}

func (s *sender[Req]) Send(req *Req) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.send(req)
}

// pumpInput sends what in gives, in chunks, then says it ended. It returns
// when in's Read fails or a send fails (the call has ended): a blocked Read
// keeps it until its owner closes in.
func pumpInput(in io.Reader, data func([]byte) error, done func() error) {
	buf := make([]byte, chunkSize)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if data(append([]byte(nil), buf[:n]...)) != nil {
				return
			}
		}
		if err != nil {
			_ = done()
			return
		}
	}
}

// pumpResizes forwards terminal sizes until sizes closes or ctx ends.
func pumpResizes(ctx context.Context, sizes <-chan remotecommand.TerminalSize, send func(*runtimev1.TerminalSize) error) {
	for {
		select {
		case <-ctx.Done():
			return
		case size, ok := <-sizes:
			if !ok {
				return
			}
			if send(terminalSize(size)) != nil {
				return
			}
		}
	}
}

func terminalSize(size remotecommand.TerminalSize) *runtimev1.TerminalSize {
	return &runtimev1.TerminalSize{Width: uint32(size.Width), Height: uint32(size.Height)}
}

// firstSizeWait is how long a terminal command waits for the client's
// terminal size: kubectl sends it at once, and a command started before it
// would see a terminal of size 0.
const firstSizeWait = time.Second

func firstSize(ctx context.Context, sizes <-chan remotecommand.TerminalSize) *runtimev1.TerminalSize {
	t := time.NewTimer(firstSizeWait)
	defer t.Stop()
	select {
	case size, ok := <-sizes:
		if ok {
			return terminalSize(size)
		}
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}
