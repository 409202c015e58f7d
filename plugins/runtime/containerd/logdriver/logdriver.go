// Package logdriver is the program the runc shim starts to write a
// container's output to its log file in the kubelet's CRI format:
//
//	fedlet-log-driver log-driver /state/logs/<pod-uid>/<container>/<attempt>.log
//
// The shim, not the plugin, owns that process, so logs keep being written
// while the plugin is down. The shim waits for the driver to be ready before
// it creates the container, so the driver's start-up is part of every
// container's: the package imports next to nothing, and cmd/fedlet-log-driver
// is a small executable that starts in a few milliseconds.
package logdriver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/runtime/v2/logging"
	"golang.org/x/sys/unix"
)

// Arg is the first argument of a log driver's command line; the log file's
// path is the second.
const Arg = "log-driver"

// Is says whether args (os.Args) start a log driver.
func Is(args []string) bool {
	return len(args) == 3 && args[1] == Arg
}

// Run runs the log driver that args (os.Args) name and exits the process
// when the container's output ends. It does not return.
func Run(args []string) {
	path := args[2]
	logging.Run(func(_ context.Context, cfg *logging.Config, ready func() error) error {
		// The shim sends SIGTERM once the container has exited, which
		// cancels the context: the driver still drains the pipes to EOF,
		// which follows as the writers are gone (the shim kills it after
		// 12 s in any case).
		return writeCRILog(path, cfg.Stdout, cfg.Stderr, ready)
	})
}

// maxLogLine is the longest line written whole; longer ones are split into
// partial ("P") lines, as the kubelet does.
const maxLogLine = 16 * 1024

// writeCRILog copies stdout and stderr to path in the kubelet's CRI log
// format, one "<RFC3339Nano time> <stream> <F|P> <text>" line per line of
// output. The file stays locked (flock) while the driver runs, so that a
// reader knows when the last line is in.
func writeCRILog(path string, stdout, stderr io.Reader, ready func() error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		fmt.Fprintf(os.Stderr, "fedlet log driver: lock %s: %v\n", path, err)
	}
	if err := ready(); err != nil {
		return fmt.Errorf("signal readiness: %w", err)
	}
	w := &criLogWriter{w: f}
	var wg sync.WaitGroup
	for stream, r := range map[string]io.Reader{"stdout": stdout, "stderr": stderr} {
		if r == nil {
			continue
		}
		wg.Go(func() { w.copyStream(stream, r) })
	}
	wg.Wait()
	return w.err
}

// criLogWriter writes whole CRI lines of several streams to one file.
type criLogWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error // the first write error; output is then read and dropped
}

func (c *criLogWriter) copyStream(stream string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case len(line) > 0 && line[len(line)-1] == '\n':
			c.writeLine(stream, "F", line[:len(line)-1])
		case errors.Is(err, bufio.ErrBufferFull):
			c.writeLine(stream, "P", line)
		case len(line) > 0:
			c.writeLine(stream, "P", line) // unterminated last line: no newline to restore
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func (c *criLogWriter) writeLine(stream, tag string, text []byte) {
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	buf := make([]byte, 0, len(ts)+len(stream)+len(tag)+len(text)+4)
	buf = append(buf, ts...)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ')
	buf = append(buf, tag...)
	buf = append(buf, ' ')
	buf = append(buf, text...)
	buf = append(buf, '\n')
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	if _, err := c.w.Write(buf); err != nil {
		c.err = fmt.Errorf("write log: %w", err)
		fmt.Fprintf(os.Stderr, "fedlet log driver: %v\n", c.err)
	}
}
