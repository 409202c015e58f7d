package containerd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/logs"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

const (
	// logPollInterval is how often a follower looks for a log file its
	// driver has not created yet.
	logPollInterval = 200 * time.Millisecond
	// logFlushDelay is how long output waits for more to fill its chunk.
	logFlushDelay = 10 * time.Millisecond
	// logChunkSize is the most output one LogChunk carries.
	logChunkSize = 32 * 1024
	// logDriverGrace bounds the wait for a log driver to write its last
	// lines after its container exited (the shim kills it after 12 s).
	logDriverGrace = 15 * time.Second
)

// ContainerLogs streams a container's output as `kubectl logs` shows it,
// read from the CRI log file its log driver writes.
func (b *Backend) ContainerLogs(req *runtimev1.ContainerLogsRequest, stream grpc.ServerStreamingServer[runtimev1.LogChunk]) error {
	s, err := b.sessionFor(req.GetNode())
	if err != nil {
		return err
	}
	send := func(data []byte) error {
		return stream.Send(&runtimev1.LogChunk{Data: data})
	}
	return grpcError(s.containerLogs(s.withNamespace(stream.Context()), req, send))
}

func (s *session) containerLogs(ctx context.Context, req *runtimev1.ContainerLogsRequest, send func([]byte) error) error {
	uid, name := req.GetPodUid(), req.GetContainer()
	if err := validateName("pod_uid", uid); err != nil {
		return err
	}
	if err := validateName("container", name); err != nil {
		return err
	}
	if req.GetLimitBytes() < 0 {
		return sdk.InvalidArgument("limit_bytes", "must not be negative")
	}
	attempts, err := s.loggedAttempts(ctx, req.GetNode(), uid, name)
	if err != nil {
		return err
	}
	if len(attempts) == 0 {
		return sdk.ContainerNotFound(uid, name)
	}
	attempt := attempts[len(attempts)-1]
	if req.GetPrevious() {
		if len(attempts) < 2 {
			return status.Errorf(codes.NotFound, "previous terminated container %s of pod %s not found", name, uid)
		}
		attempt = attempts[len(attempts)-2]
	}
	opts := &logs.LogOptions{
		Follow:    req.GetFollow() && !req.GetPrevious(),
		Timestamp: req.GetTimestamps(),
	}
	if n := req.GetLimitBytes(); n > 0 {
		opts.LimitBytes = &n
	}
	if n := req.GetSinceUnixNano(); n > 0 {
		opts.Since = time.Unix(0, n)
	}
	l := s.attemptLog(s.logPath(uid, name, attempt), containerID(uid, name, attempt))
	out := &chunkWriter{send: send}
	err = l.read(ctx, opts, req.GetTailLines(), out, out)
	return errors.Join(err, out.Close())
}

// loggedAttempts returns the attempts of a container that exist in
// containerd or have a log file, in order.
func (s *session) loggedAttempts(ctx context.Context, node, uid, name string) ([]uint32, error) {
	set := map[uint32]bool{}
	recs, err := s.attempts(ctx, node, uid, name)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		set[labelAttempt(r.Labels)] = true
	}
	entries, err := os.ReadDir(s.logDir(uid, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "list logs of container %s: %v", name, err)
	}
	for _, e := range entries {
		if n, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), ".log"), 10, 32); err == nil && strings.HasSuffix(e.Name(), ".log") {
			set[uint32(n)] = true
		}
	}
	out := make([]uint32, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// criLog is one attempt's CRI log file, read with the kubelet's own reader
// (k8s.io/cri-client/pkg/logs): tail, since, byte limit, timestamps and
// follow until the container has exited and its last line is written.
type criLog struct {
	path string
	id   string // the attempt's containerd container
	// running says whether the attempt may still write output.
	running func(ctx context.Context) (bool, error)
}

// attemptLog is the log of the attempt id of the session, at path.
func (s *session) attemptLog(path, id string) criLog {
	return criLog{path: path, id: id, running: func(ctx context.Context) (bool, error) {
		st, err := s.statusOf(ctx, id)
		if isNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return st.GetState() != runtimev1.ContainerState_CONTAINER_STATE_EXITED, nil
	}}
}

// read writes the log's stdout and stderr entries to stdout and stderr.
// tail counts lines of output (negative for all); a follower waits for a
// log its driver has not created yet. It returns nil when the caller goes
// away.
func (l criLog) read(ctx context.Context, opts *logs.LogOptions, tail int64, stdout, stderr io.Writer) error {
	exists, err := l.wait(ctx, opts.Follow)
	if err != nil || !exists {
		return err
	}
	if tail >= 0 {
		entries, err := tailEntries(l.path, tail)
		if err != nil {
			return status.Errorf(codes.Internal, "read log %s: %v", l.path, err)
		}
		opts.TailLines = &entries
	}
	err = logs.ReadLogs(ctx, l.path, l.id, opts, attemptState{l: l}, stdout, stderr)
	switch {
	case ctx.Err() != nil:
		return nil // the caller went away
	case err != nil && status.Code(err) != codes.Unknown:
		return err // a status from attemptState
	case err != nil:
		return status.Errorf(codes.Internal, "read log %s: %v", l.path, err)
	}
	return nil
}

// wait says whether the log file exists; a follower of an attempt whose
// driver has not created it yet waits while the attempt runs.
func (l criLog) wait(ctx context.Context, follow bool) (bool, error) {
	for {
		_, err := os.Stat(l.path)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return false, status.Errorf(codes.Internal, "open log: %v", err)
		}
		if !follow {
			return false, nil
		}
		running, err := l.running(ctx)
		if err != nil || !running {
			return false, err
		}
		if sleep(ctx, logPollInterval) != nil {
			return false, nil
		}
	}
}

// attemptState answers the log reader's one question to the runtime, the
// state of the attempt it follows. An exited attempt is reported once its
// log driver has written the last line, so that the reader, which reads to
// the end once more and stops, misses none.
type attemptState struct {
	internalapi.RuntimeService // nil: ReadLogs calls ContainerStatus only
	l                          criLog
}

func (a attemptState) ContainerStatus(ctx context.Context, _ string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	running, err := a.l.running(ctx)
	if err != nil {
		return nil, err
	}
	state := runtimeapi.ContainerState_CONTAINER_RUNNING
	if !running {
		waitLogDriver(ctx, a.l.path)
		state = runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: a.l.id, State: state}}, nil
}

// waitLogDriver waits until no log driver holds the file's lock, that is
// until the last line is written, for logDriverGrace at most.
func waitLogDriver(ctx context.Context, path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	deadline := time.Now().Add(logDriverGrace)
	for time.Now().Before(deadline) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		if err == nil {
			_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
			return
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || sleep(ctx, 50*time.Millisecond) != nil {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tailEntries returns how many CRI entries the last n lines of output take
// in the log at path. The reader counts entries, but the log driver splits
// a line longer than maxLogLine into partial ("P") entries, which `kubectl
// logs --tail` must count once.
func tailEntries(path string, n int64) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	starts := make([]int64, 0, min(n, 4096)) // ring: the entry each of the last n lines starts at
	next := 0
	var entries int64
	lineStart := true
	br := bufio.NewReaderSize(f, 64*1024)
	for {
		entry, err := br.ReadBytes('\n')
		if len(entry) > 0 && entry[len(entry)-1] == '\n' {
			if lineStart {
				if int64(len(starts)) < n {
					starts = append(starts, entries)
				} else {
					starts[next] = entries
					next = (next + 1) % len(starts)
				}
			}
			lineStart = !partialEntry(entry)
			entries++
		}
		if err != nil {
			break
		}
	}
	if int64(len(starts)) < n {
		return entries, nil
	}
	return entries - starts[next], nil
}

// partialEntry says whether a CRI entry ("<time> <stream> <tag> <text>")
// is tagged partial.
func partialEntry(entry []byte) bool {
	fields := bytes.SplitN(entry, []byte{' '}, 4)
	if len(fields) < 3 {
		return false
	}
	tag, _, _ := bytes.Cut(fields[2], []byte(runtimeapi.LogTagDelimiter))
	return runtimeapi.LogTag(tag) == runtimeapi.LogTagPartial
}

// chunkWriter gathers the reader's lines into LogChunks of up to
// logChunkSize: a chunk goes out when full or logFlushDelay after its first
// line, so that a follower sees output at once and a long log does not
// cost a message per line. Close sends the rest; nothing is sent after it.
type chunkWriter struct {
	send func([]byte) error

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer
	err    error
	closed bool
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= logChunkSize {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
	} else if w.timer == nil {
		w.timer = time.AfterFunc(logFlushDelay, w.flush)
	}
	return len(p), nil
}

func (w *chunkWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.flushLocked()
}

func (w *chunkWriter) flushLocked() error {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if len(w.buf) == 0 || w.err != nil || w.closed {
		return w.err
	}
	data := w.buf
	w.buf = nil
	w.err = w.send(data)
	return w.err
}

// Close sends what is left.
func (w *chunkWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.flushLocked()
	w.closed = true
	return err
}
