package kubernetes

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// errorStreamWait bounds the wait for the member's verdict on a connection
// once its data has ended.
const errorStreamWait = 10 * time.Second

// PortForward connects to a port of a member pod through the member's
// pods/portforward: one SPDY connection per call carrying one forwarded
// connection (an error stream and a data stream, as `kubectl port-forward`
// makes for each connection it accepts). Data goes both ways until either
// side ends; data_done half-closes. A port nothing listens on is
// Unavailable, with the member's message.
func (b *Backend) PortForward(stream grpc.BidiStreamingServer[runtimev1.PortForwardRequest, runtimev1.PortForwardResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	m, err := b.memberFor(start.GetNode())
	if err != nil {
		return err
	}
	port := start.GetPort()
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	uid := start.GetPodUid()
	pod, err := m.podByUID(ctx, uid)
	if err != nil {
		return err
	}
	what := "forward port " + strconv.Itoa(int(port)) + " of pod " + uid

	transport, upgrader, err := spdy.RoundTripperFor(m.rest)
	if err != nil {
		return status.Errorf(codes.Internal, "set up the streaming client of the member cluster of node %s: %v", m.cfg.Node, err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, m.subresourceURL(pod, "portforward", nil))
	conn, _, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		return m.memberError(err, "%s", what)
	}
	defer conn.Close()
	// The connection lives as long as the call: the caller's hang-up ends it.
	go func() {
		<-ctx.Done()
		conn.Close()
	}()

	headers := http.Header{}
	headers.Set(corev1.StreamType, corev1.StreamTypeError)
	headers.Set(corev1.PortHeader, strconv.Itoa(int(port)))
	headers.Set(corev1.PortForwardRequestIDHeader, "0")
	errorStream, err := conn.CreateStream(headers)
	if err != nil {
		return m.memberError(err, "%s: open the error stream", what)
	}
	errorStream.Close() // nothing is written to it
	verdict := make(chan string, 1)
	go func() {
		msg, _ := io.ReadAll(errorStream)
		verdict <- string(msg)
	}()
	headers.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(headers)
	if err != nil {
		return m.memberError(err, "%s: open the data stream", what)
	}

	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				// The caller is gone or has half-closed its side of the call:
				// end the connection only when it is gone.
				if ctx.Err() != nil {
					_ = data.Reset()
				}
				return
			}
			switch r := req.Request.(type) {
			case *runtimev1.PortForwardRequest_Data:
				if _, err := data.Write(r.Data); err != nil {
					return
				}
			case *runtimev1.PortForwardRequest_DataDone:
				_ = data.Close() // half-close: the pod's side may still answer
			}
		}
	}()

	buf := make([]byte, 32*1024)
	for {
		n, err := data.Read(buf)
		if n > 0 {
			if serr := stream.Send(&runtimev1.PortForwardResponse{Data: append([]byte(nil), buf[:n]...)}); serr != nil {
				return serr
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			break
		}
	}
	_ = data.Reset()
	select {
	case msg := <-verdict:
		if msg != "" {
			return status.Errorf(codes.Unavailable, "%s in the member cluster of node %s: %s", what, m.cfg.Node, msg)
		}
	case <-time.After(errorStreamWait):
	case <-ctx.Done():
	}
	return nil
}
