package nodeapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// LogOptions are the kubelet's container-log query parameters, parsed.
type LogOptions struct {
	// Container is the container whose log is asked for (from the path).
	Container string
	// Follow keeps the stream open, writing new lines as the container logs them.
	Follow bool
	// Timestamps prefixes each line with its RFC3339Nano timestamp.
	Timestamps bool
	// Previous asks for the log of the container's previous, terminated instance.
	Previous bool
	// TailLines, if set, starts that many lines before the end (0 or more).
	TailLines *int64
	// LimitBytes, if set, stops after that many bytes (1 or more). The server also enforces it on
	// what it sends, so a backend that overshoots is cut off.
	LimitBytes *int64
	// SinceSeconds, if set, starts with the lines logged in the last that many seconds (1 or
	// more). At most one of SinceSeconds and SinceTime is set.
	SinceSeconds *int64
	// SinceTime, if set, starts with the lines logged at or after it.
	SinceTime *time.Time
}

// Pods is what the server needs from the agent.
type Pods interface {
	// NodeOf says which of the agent's nodes runs the pod, for authorization.
	NodeOf(namespace, name string) (node string, ok bool)
	// ContainerLogs writes the container's log to w (flushing is the server's job), until done
	// or ctx ends. Errors that wrap ErrNotFound answer 404.
	ContainerLogs(ctx context.Context, namespace, name string, opts LogOptions, w io.Writer) error
}

// ErrNotFound is returned (wrapped) by Pods for unknown pods and containers; the server answers
// 404 with the error's message. Any other error answers 500 with its message.
var ErrNotFound = errors.New("not found")

// containerLogs serves GET /containerLogs/{namespace}/{pod}/{container}.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	namespace, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	if !s.authorizePod(w, r, namespace, pod) {
		return
	}

	opts, err := parseLogOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	opts.Container = container
	s.streamLogs(w, r, namespace, pod, opts)
}

// streamLogs copies the backend's log to the client, flushing after every write. The status
// follows the first write, so errors before it still answer 404 or 500.
func (s *Server) streamLogs(w http.ResponseWriter, r *http.Request, namespace, pod string, opts LogOptions) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if opts.Follow {
		defer context.AfterFunc(s.stopping, cancel)()
	}

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	out := &flushWriter{w: w, rc: http.NewResponseController(w)}
	var dst io.Writer = out
	var limit *limitWriter
	if opts.LimitBytes != nil {
		limit = &limitWriter{w: out, left: *opts.LimitBytes, reached: cancel}
		dst = limit
	}

	err := s.pods.ContainerLogs(ctx, namespace, pod, opts, dst)
	rl := requestLogOf(r)
	switch {
	case err == nil, limit != nil && limit.done():
	case out.started:
		// The status is sent; the client sees the stream end. Only the log can tell why, unless
		// the client left or the server is stopping, which needs no telling.
		if ctx.Err() == nil {
			rl.error = err.Error()
		}
	case r.Context().Err() != nil:
		// The client went away before any log came; nobody to answer.
	case ctx.Err() != nil:
		// Only a follow's context ends without the client's: the server is stopping.
		http.Error(w, "node API shutting down", http.StatusServiceUnavailable)
	case errors.Is(err, ErrNotFound):
		rl.error = err.Error()
		http.Error(w, err.Error(), http.StatusNotFound)
	default:
		rl.error = err.Error()
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// flushWriter flushes after every write, so `kubectl logs -f` sees each line as it comes.
type flushWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	started bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f.started = true
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	// A flush error means the client is gone: tell the backend, so it stops.
	return n, f.rc.Flush()
}

// errLimitReached ends a backend's writes once limitBytes are sent.
var errLimitReached = errors.New("limitBytes reached")

// limitWriter passes on at most left bytes, then fails writes and calls reached (which cancels
// the backend's context, for one that waits rather than writes).
type limitWriter struct {
	w       io.Writer
	left    int64
	reached func()
}

func (l *limitWriter) done() bool { return l.left <= 0 }

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errLimitReached
	}
	cut := int64(len(p)) > l.left
	if cut {
		p = p[:l.left]
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	if err != nil {
		return n, err
	}
	if l.left <= 0 {
		l.reached()
		if cut {
			return n, errLimitReached
		}
	}
	return n, nil
}
