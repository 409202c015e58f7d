package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"

	"github.com/vishvananda/netns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// PortForward implements runtimev1.RuntimeServer: it connects to the port
// on the loopback of the pod's network namespace, as the kubelet does, so
// that a pod's port is reached whatever its addresses.
func (b *Backend) PortForward(stream grpc.BidiStreamingServer[runtimev1.PortForwardRequest, runtimev1.PortForwardResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	s, err := b.sessionFor(start.GetNode())
	if err != nil {
		return err
	}
	return grpcError(s.portForward(s.withNamespace(stream.Context()), start, stream))
}

func (s *session) portForward(ctx context.Context, start *runtimev1.PortForwardStart, stream grpc.BidiStreamingServer[runtimev1.PortForwardRequest, runtimev1.PortForwardResponse]) error {
	uid, port := start.GetPodUid(), start.GetPort()
	if err := validateName("pod_uid", uid); err != nil {
		return err
	}
	sb, err := s.client.ContainerService().Get(ctx, sandboxID(uid))
	if err != nil {
		return statusf(err, "look up sandbox of pod %s", uid)
	}
	if sb.Labels[LabelNode] != start.GetNode() {
		return status.Errorf(codes.NotFound, "pod %s has no sandbox on node %q", uid, start.GetNode())
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	conn, err := dialIn(ctx, sb.Labels[labelNetns], addr)
	if err != nil {
		return status.Errorf(codes.Unavailable, "connect to port %d of pod %s: %v", port, uid, err)
	}
	defer conn.Close()

	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				_ = conn.Close()
				return
			}
			switch r := req.Request.(type) {
			case *runtimev1.PortForwardRequest_Data:
				if _, err := conn.Write(r.Data); err != nil {
					return
				}
			case *runtimev1.PortForwardRequest_DataDone:
				_ = conn.(*net.TCPConn).CloseWrite()
			}
		}
	}()
	buf := make([]byte, 32*1024)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if serr := stream.Send(&runtimev1.PortForwardResponse{Data: append([]byte(nil), buf[:n]...)}); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return status.Errorf(codes.Unavailable, "read from port %d of pod %s: %v", port, uid, err)
		}
	}
}

// dialIn connects to addr from inside the network namespace at nsPath (the
// host's when empty). A socket stays in the namespace it was made in, so
// only the dial runs on a thread moved into the pod's namespace; a thread
// that cannot be moved back is never unlocked and dies with its goroutine.
func dialIn(ctx context.Context, nsPath, addr string) (net.Conn, error) {
	var d net.Dialer
	if nsPath == "" {
		return d.DialContext(ctx, "tcp", addr)
	}
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("get current network namespace: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("open network namespace %s: %w", nsPath, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("enter network namespace %s: %w", nsPath, err)}
			return
		}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if serr := netns.Set(orig); serr != nil {
			if conn != nil {
				conn.Close()
			}
			done <- result{err: fmt.Errorf("return to the host network namespace: %w", serr)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}
