package nodeapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// Execer is what the server needs to run `kubectl exec`. It is optional: an
// agent whose Pods do not implement it answers exec requests with 501.
type Execer interface {
	// ExecInContainer runs cmd in the container, copying in to its stdin and
	// its output to out and errOut (errOut is nil with a tty) until it
	// exits. A non-zero exit is an error implementing k8s.io/utils/exec.ExitError.
	ExecInContainer(ctx context.Context, namespace, pod, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error
}

// streamIdleTimeout closes an exec stream nobody has used for that long, as the kubelet's default.
const streamIdleTimeout = 4 * time.Hour

// exec serves /exec/{namespace}/{pod}/{container}: it upgrades the
// connection (SPDY or WebSocket, every version kubectl speaks) with the
// Kubernetes streaming library and hands the streams to the Execer.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	namespace, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	execer, ok := s.pods.(Execer)
	if !ok {
		http.Error(w, "exec is not supported by this agent", http.StatusNotImplemented)
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
	cmd := r.URL.Query()[remotecommandCommandParam]
	if len(cmd) == 0 {
		http.Error(w, "no command given (query parameter command)", http.StatusBadRequest)
		return
	}
	remotecommand.ServeExec(w, r, execAdapter{execer: execer, namespace: namespace}, pod, "", container, cmd, opts,
		streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

const remotecommandCommandParam = "command"

// execAdapter gives the library's Executor, which knows pods by name only, the namespace.
type execAdapter struct {
	execer    Execer
	namespace string
}

func (a execAdapter) ExecInContainer(ctx context.Context, pod, _, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	return a.execer.ExecInContainer(ctx, a.namespace, pod, container, cmd, in, out, errOut, tty, resize)
}

// authorizePod checks that the (authenticated) user may reach the node
// running the pod, and that the pod is here. A pod this agent does not know
// is checked against every node (an empty name): a caller allowed on all
// nodes, like kube-apiserver, learns it is not here (404); a caller allowed
// on some nodes only gets 403, and cannot probe which pods the agent runs.
func (s *Server) authorizePod(w http.ResponseWriter, r *http.Request, namespace, pod string) bool {
	rl := requestLogOf(r)
	rl.pod = namespace + "/" + pod
	u, ok := userOf(r.Context())
	if !ok {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return false
	}
	node, known := s.pods.NodeOf(namespace, pod)
	rl.node = node
	if !s.authorize(w, r, nodeProxyAttributes(u, r, node)) {
		return false
	}
	if !known {
		http.Error(w, fmt.Sprintf("pod %s/%s not found", namespace, pod), http.StatusNotFound)
		return false
	}
	return true
}
