package nodeapi

import (
	"context"
	"io"
	"net/http"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// PortForwarder is what the server needs for `kubectl port-forward`. It is
// optional: an agent whose Pods do not implement it answers with 501.
type PortForwarder interface {
	// PortForward copies stream to and from the TCP port inside the pod's
	// network, until either side closes.
	PortForward(ctx context.Context, namespace, pod string, port int32, stream io.ReadWriteCloser) error
}

// portForward serves /portForward/{namespace}/{pod}: one upgraded
// connection carries every connection kubectl forwards to the pod.
func (s *Server) portForward(w http.ResponseWriter, r *http.Request) {
	namespace, pod := r.PathValue("namespace"), r.PathValue("pod")
	forwarder, ok := s.pods.(PortForwarder)
	if !ok {
		http.Error(w, "port forwarding is not supported by this agent", http.StatusNotImplemented)
		return
	}
	if !s.authorizePod(w, r, namespace, pod) {
		return
	}
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, r, forwardAdapter{forwarder: forwarder, namespace: namespace}, pod, "", opts,
		streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
}

// forwardAdapter gives the library's PortForwarder, which knows pods by
// name only, the namespace.
type forwardAdapter struct {
	forwarder PortForwarder
	namespace string
}

func (a forwardAdapter) PortForward(ctx context.Context, pod, _ string, port int32, stream io.ReadWriteCloser) error {
	return a.forwarder.PortForward(ctx, a.namespace, pod, port, stream)
}
