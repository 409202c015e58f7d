package crilog

import (
	"context"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/logs"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Options choose what Read gives of a log, as `kubectl logs` does.
type Options struct {
	// Follow keeps reading as the container writes, until running says it
	// has stopped and the log is read to its end.
	Follow bool
	// TailLines gives the last N lines only; negative for all.
	TailLines int64
	// Since gives the lines written at or after it only; zero for all.
	Since time.Time
	// Timestamps prefixes each line with its RFC 3339 time.
	Timestamps bool
	// LimitBytes stops after this many bytes; zero for no limit.
	LimitBytes int64
}

// OptionsOf returns the options a ContainerLogsRequest asks for.
func OptionsOf(req *runtimev1.ContainerLogsRequest) Options {
	o := Options{Follow: req.GetFollow(), TailLines: req.GetTailLines(), Timestamps: req.GetTimestamps(), LimitBytes: req.GetLimitBytes()}
	if req.GetSinceUnixNano() != 0 {
		o.Since = time.Unix(0, req.GetSinceUnixNano())
	}
	return o
}

// Read writes the log at path to stdout and stderr, each line to the
// writer of its stream. running says whether the container may still
// write; it is asked only when following.
func Read(ctx context.Context, path string, opts Options, running func() bool, stdout, stderr io.Writer) error {
	lo := &logs.LogOptions{Follow: opts.Follow, Since: opts.Since, Timestamp: opts.Timestamps}
	if opts.TailLines >= 0 {
		lo.TailLines = &opts.TailLines
	}
	if opts.LimitBytes > 0 {
		lo.LimitBytes = &opts.LimitBytes
	}
	if err := logs.ReadLogs(ctx, path, "", lo, liveness{running: running}, stdout, stderr); err != nil {
		return fmt.Errorf("read container log %s: %w", path, err)
	}
	return nil
}

// Send answers a ContainerLogs call with the log at path.
func Send(ctx context.Context, path string, req *runtimev1.ContainerLogsRequest, running func() bool, srv grpc.ServerStreamingServer[runtimev1.LogChunk]) error {
	w := chunkWriter{srv}
	return Read(ctx, path, OptionsOf(req), running, w, w)
}

// Follow writes what the container writes to its log from now on, each
// line to the writer of its stream, until running says it has stopped: the
// output Attach carries.
func Follow(ctx context.Context, path string, running func() bool, stdout, stderr io.Writer) error {
	return Read(ctx, path, Options{Follow: true, TailLines: 0}, running, stdout, stderr)
}

type chunkWriter struct {
	srv grpc.ServerStreamingServer[runtimev1.LogChunk]
}

func (w chunkWriter) Write(p []byte) (int, error) {
	if err := w.srv.Send(&runtimev1.LogChunk{Data: p}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// liveness is the one question Kubernetes' log reader asks the runtime
// while it follows: is the container still running?
type liveness struct {
	internalapi.RuntimeService
	running func() bool
}

func (l liveness) ContainerStatus(context.Context, string, bool) (*runtimeapi.ContainerStatusResponse, error) {
	state := runtimeapi.ContainerState_CONTAINER_EXITED
	if l.running != nil && l.running() {
		state = runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{State: state}}, nil
}
