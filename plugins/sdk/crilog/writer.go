// Package crilog writes and reads container logs in the CRI format, the
// one the kubelet and `crictl logs` read: a line
// "<RFC 3339 time> <stdout|stderr> <F|P> <text>" per line of output, P
// when the text is a part of a line the next entry continues.
//
// A runtime plugin that keeps its containers' output in such a file serves
// ContainerLogs with Send, and Attach's output with Follow, and gets tail,
// since, timestamps, byte limits and following from Kubernetes' own reader
// (k8s.io/cri-client/pkg/logs).
package crilog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// File is a container's log file, open for writing. Its Stdout and Stderr
// writers may be written from different goroutines: each write becomes
// whole entries, never interleaved with the other stream's.
type File struct {
	mu sync.Mutex
	f  *os.File
}

// Create opens the log file at path for appending, creating it if needed.
func Create(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open container log %s: %w", path, err)
	}
	return &File{f: f}, nil
}

// Stdout returns a writer of the container's standard output.
func (l *File) Stdout() io.Writer { return streamWriter{l, "stdout"} }

// Stderr returns a writer of the container's standard error.
func (l *File) Stderr() io.Writer { return streamWriter{l, "stderr"} }

// Close closes the file.
func (l *File) Close() error { return l.f.Close() }

type streamWriter struct {
	l      *File
	stream string
}

// Write writes p as entries stamped now: one F entry per complete line, a
// P entry for what follows the last newline. Output is never held back to
// wait for the end of a line: a follower sees it at once. (Kubernetes'
// reader counts entries for tail_lines, so a line written in parts counts
// as several.)
func (w streamWriter) Write(p []byte) (int, error) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var b bytes.Buffer
	for rest := p; len(rest) > 0; {
		line, tag := rest, "P"
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, tag = rest[:i], "F"
			rest = rest[i+1:]
		} else {
			rest = nil
		}
		fmt.Fprintf(&b, "%s %s %s %s\n", now, w.stream, tag, line)
	}
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if _, err := w.l.f.Write(b.Bytes()); err != nil {
		return 0, fmt.Errorf("write container log: %w", err)
	}
	return len(p), nil
}
