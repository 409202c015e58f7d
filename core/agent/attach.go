package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc/status"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/fedlet/fedlet/core/nodeapi"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// AttachContainer implements nodeapi.Attacher over the runtime's Attach
// stream.
func (r *nodeRegistry) AttachContainer(ctx context.Context, namespace, name, container string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	n, uid, ok := r.find(namespace, name)
	if !ok {
		return fmt.Errorf("pod %s/%s on this agent: %w", namespace, name, nodeapi.ErrNotFound)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := n.runtime.Attach(ctx)
	if err != nil {
		return fmt.Errorf("attach to %s/%s: %w", namespace, name, err)
	}
	var sendMu sync.Mutex // stdin and resizes come from two goroutines
	send := func(req *runtimev1.AttachRequest) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(req)
	}
	start := &runtimev1.AttachStart{Node: n.name, PodUid: uid, Container: container, Stdin: in != nil}
	if err := send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Start{Start: start}}); err != nil {
		return fmt.Errorf("attach to %s/%s: %w", namespace, name, err)
	}
	if in != nil {
		go pumpStdin(in, func(data []byte) error {
			return send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Stdin{Stdin: data}})
		}, func() {
			_ = send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_StdinDone{StdinDone: true}})
		})
	}
	if resize != nil {
		go func() {
			for size := range resize {
				_ = send(&runtimev1.AttachRequest{Request: &runtimev1.AttachRequest_Resize{Resize: &runtimev1.TerminalSize{Width: uint32(size.Width), Height: uint32(size.Height)}}})
			}
		}()
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil // the container exited
		}
		if err != nil {
			return errors.New(status.Convert(err).Message())
		}
		var werr error
		switch r := resp.Response.(type) {
		case *runtimev1.AttachResponse_Stdout:
			werr = write(out, r.Stdout)
		case *runtimev1.AttachResponse_Stderr:
			w := errOut
			if w == nil {
				w = out // a terminal merges the streams
			}
			werr = write(w, r.Stderr)
		}
		if werr != nil {
			// The client went away (its connection is closed): end the
			// runtime's session rather than keep it until the container exits.
			return nil
		}
	}
}

// write writes data to w, if there is a w.
func write(w io.Writer, data []byte) error {
	if w == nil {
		return nil
	}
	_, err := w.Write(data)
	return err
}
