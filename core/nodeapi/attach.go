package nodeapi

import (
	"context"
	"io"
	"net/http"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// Attacher is what the server needs for `kubectl attach`. It is optional:
// an agent whose Pods do not implement it answers with 501.
type Attacher interface {
	// AttachContainer connects in to the running container's stdin (nil
	// for none) and its output to out and errOut (errOut is nil with a
	// tty) until the container exits or the caller goes.
	AttachContainer(ctx context.Context, namespace, pod, container string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error
}

// attach serves /attach/{namespace}/{pod}/{container} with the Kubernetes
// streaming library, as exec does.
func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	namespace, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	attacher, ok := s.pods.(Attacher)
	if !ok {
		http.Error(w, "attach is not supported by this agent", http.StatusNotImplemented)
		return
	}
	if !s.authorizePod(w, r, namespace, pod) {
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	remotecommand.ServeAttach(w, r, attachAdapter{attacher: attacher, namespace: namespace}, pod, "", container, opts,
		streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// attachAdapter gives the library's Attacher, which knows pods by name
// only, the namespace.
type attachAdapter struct {
	attacher  Attacher
	namespace string
}

func (a attachAdapter) AttachContainer(ctx context.Context, pod, _, container string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return a.attacher.AttachContainer(ctx, a.namespace, pod, container, in, out, errOut, tty, resize)
}
