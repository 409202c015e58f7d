package containerd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// logPollInterval is how often a follower looks for new output.
	logPollInterval = 200 * time.Millisecond
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
	r := &logReader{
		s:      s,
		path:   s.logPath(uid, name, attempt),
		id:     containerID(uid, name, attempt),
		follow: req.GetFollow() && !req.GetPrevious(),
		out: &logOutput{
			send:       send,
			timestamps: req.GetTimestamps(),
			limit:      req.GetLimitBytes(),
		},
		tail: req.GetTailLines(),
		poll: logPollInterval,
	}
	if n := req.GetSinceUnixNano(); n > 0 {
		r.since = time.Unix(0, n)
	}
	return r.run(ctx)
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

// logReader reads one attempt's log file, following it if asked until the
// container has exited and its log driver has written the last line.
type logReader struct {
	s      *session
	path   string
	id     string
	follow bool
	tail   int64 // negative: all
	since  time.Time
	out    logSink
	poll   time.Duration // how often a follower looks for new output
}

// logSink takes CRI log entries: logOutput for `kubectl logs`,
// streamOutput for an attachment.
type logSink interface {
	// entry takes one CRI line; done says to read no more.
	entry(line []byte, since time.Time) (done bool, err error)
	flush() error
}

func (r *logReader) run(ctx context.Context) error {
	f, err := r.open(ctx)
	if err != nil || f == nil {
		return err
	}
	defer f.Close()
	if r.tail >= 0 {
		off, err := tailOffset(f, r.tail)
		if err != nil {
			return status.Errorf(codes.Internal, "read log %s: %v", r.path, err)
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return status.Errorf(codes.Internal, "read log %s: %v", r.path, err)
		}
	}
	br := bufio.NewReaderSize(f, 64*1024)
	var pending []byte // a line the driver has not finished writing
	final := false     // the driver is done: the next EOF is the end
	for {
		chunk, err := br.ReadBytes('\n')
		if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
			line := chunk
			if len(pending) > 0 {
				line = append(pending, chunk...)
				pending = nil
			}
			if done, err := r.out.entry(line, r.since); done || err != nil {
				return errors.Join(err, r.out.flush())
			}
			continue
		}
		pending = append(pending, chunk...)
		if err != nil && !errors.Is(err, io.EOF) {
			return status.Errorf(codes.Internal, "read log %s: %v", r.path, err)
		}
		if err := r.out.flush(); err != nil {
			return err
		}
		if !r.follow || final {
			return nil
		}
		running, err := r.running(ctx)
		if err != nil {
			return err
		}
		if !running {
			if err := waitLogDriver(ctx, f); err != nil {
				return err
			}
			final = true
			continue
		}
		if err := sleep(ctx, r.poll); err != nil {
			return nil // the caller went away
		}
	}
}

// open opens the log file; when following an attempt whose driver has not
// created it yet, it waits for it. A nil file means there is nothing to read.
func (r *logReader) open(ctx context.Context) (*os.File, error) {
	for {
		f, err := os.Open(r.path)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, status.Errorf(codes.Internal, "open log: %v", err)
		}
		if !r.follow {
			return nil, nil
		}
		running, err := r.running(ctx)
		if err != nil || !running {
			return nil, err
		}
		if err := sleep(ctx, r.poll); err != nil {
			return nil, nil
		}
	}
}

// running says whether the attempt may still write output.
func (r *logReader) running(ctx context.Context) (bool, error) {
	st, err := r.s.statusOf(ctx, r.id)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return st.GetState() != runtimev1.ContainerState_CONTAINER_STATE_EXITED, nil
}

// waitLogDriver waits until no log driver holds the file's lock, that is
// until the last line is written.
func waitLogDriver(ctx context.Context, f *os.File) error {
	deadline := time.Now().Add(logDriverGrace)
	for time.Now().Before(deadline) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		if err == nil {
			return unix.Flock(int(f.Fd()), unix.LOCK_UN)
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return status.Errorf(codes.Internal, "lock log: %v", err)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil
		}
	}
	return nil
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

// tailOffset returns where the last n lines of a CRI log start. A line of
// output split into partial entries counts once.
func tailOffset(f *os.File, n int64) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return size, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	starts := make([]int64, 0, min(n, 4096)) // ring of line starts
	next := 0
	var off int64
	lineStart := true
	br := bufio.NewReaderSize(f, 64*1024)
	for {
		entry, err := br.ReadBytes('\n')
		if len(entry) > 0 && entry[len(entry)-1] == '\n' {
			if lineStart {
				if int64(len(starts)) < n {
					starts = append(starts, off)
				} else {
					starts[next] = off
					next = (next + 1) % len(starts)
				}
			}
			_, _, partial, _, perr := parseCRILine(entry)
			lineStart = perr != nil || !partial
		}
		off += int64(len(entry))
		if err != nil {
			break
		}
	}
	if len(starts) == 0 {
		return 0, nil
	}
	if int64(len(starts)) < n {
		return starts[0], nil
	}
	return starts[next], nil
}

// parseCRILine splits "<time> <stream> <tag> <text>\n".
func parseCRILine(line []byte) (ts time.Time, stream string, partial bool, text []byte, err error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	fields := bytes.SplitN(line, []byte{' '}, 4)
	if len(fields) < 3 {
		return time.Time{}, "", false, nil, fmt.Errorf("malformed CRI log line %q", line)
	}
	ts, err = time.Parse(time.RFC3339Nano, string(fields[0]))
	if err != nil {
		return time.Time{}, "", false, nil, fmt.Errorf("malformed time in CRI log line: %w", err)
	}
	tag, _, _ := bytes.Cut(fields[2], []byte{':'})
	if len(fields) == 4 {
		text = fields[3]
	}
	return ts, string(fields[1]), string(tag) == "P", text, nil
}

// logOutput turns CRI entries into what `kubectl logs` prints, in chunks.
type logOutput struct {
	send       func([]byte) error
	timestamps bool
	limit      int64 // zero: none
	written    int64
	buf        []byte
}

// entry adds one CRI line; done says the byte limit is reached.
func (o *logOutput) entry(line []byte, since time.Time) (done bool, err error) {
	ts, _, partial, text, err := parseCRILine(line)
	if err != nil {
		return false, nil // not ours to judge: skip what cannot be read
	}
	if !since.IsZero() && ts.Before(since) {
		return false, nil
	}
	start := len(o.buf)
	if o.timestamps {
		o.buf = append(o.buf, ts.Format(time.RFC3339Nano)...)
		o.buf = append(o.buf, ' ')
	}
	o.buf = append(o.buf, text...)
	if !partial {
		o.buf = append(o.buf, '\n')
	}
	if o.limit > 0 {
		added := int64(len(o.buf) - start)
		if o.written+added >= o.limit {
			o.buf = o.buf[:start+int(o.limit-o.written)]
			o.written = o.limit
			return true, nil
		}
		o.written += added
	}
	if len(o.buf) >= logChunkSize {
		return false, o.flush()
	}
	return false, nil
}

func (o *logOutput) flush() error {
	if len(o.buf) == 0 {
		return nil
	}
	data := o.buf
	o.buf = nil
	return o.send(data)
}
