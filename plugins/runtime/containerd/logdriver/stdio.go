package logdriver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// StdioArg is the first argument of a stdio keeper's command line:
//
//	fedlet-log-driver stdio DIR LOGFILE
//
// A container started with stdin cannot use the shim's binary logging (the
// shim gives such a container no stdin), so its stdio are FIFOs in DIR
// ("stdin", "stdout" and, without a terminal, "stderr"). The shim holds the
// stdin open itself until told to close it; the keeper, which the plugin
// starts in a session of its own so that it outlives the plugin, writes
// stdout and stderr to LOGFILE in the CRI format as the log driver does,
// and exits when the container's output ends.
const StdioArg = "stdio"

// The names of the FIFOs in a stdio directory.
const (
	StdinFIFO  = "stdin"
	StdoutFIFO = "stdout"
	StderrFIFO = "stderr"
)

// IsStdio says whether args (os.Args) start a stdio keeper.
func IsStdio(args []string) bool {
	return len(args) == 4 && args[1] == StdioArg
}

// RunStdio runs the stdio keeper that args (os.Args) name, signalling
// readiness by writing a byte to file descriptor 3, and exits the process when the
// container's output ends. It does not return.
func RunStdio(args []string) {
	dir, logPath := args[2], args[3]
	ready := os.NewFile(3, "ready")
	var stderr io.Reader // none with a terminal
	if _, err := os.Stat(filepath.Join(dir, StderrFIFO)); err == nil {
		stderr = &fifoReader{path: filepath.Join(dir, StderrFIFO)}
	}
	stdout := &fifoReader{path: filepath.Join(dir, StdoutFIFO)}
	signal := func() error {
		_, err := ready.Write([]byte{1})
		return errors.Join(err, ready.Close())
	}
	if err := writeCRILog(logPath, stdout, stderr, signal); err != nil {
		fmt.Fprintf(os.Stderr, "fedlet stdio keeper: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// fifoReader opens its FIFO at the first read: the open waits for the
// shim to open the other end, which it does only once the keeper is ready.
type fifoReader struct {
	path string
	f    *os.File
}

func (r *fifoReader) Read(p []byte) (int, error) {
	if r.f == nil {
		f, err := os.Open(r.path)
		if err != nil {
			return 0, err
		}
		r.f = f
	}
	return r.f.Read(p)
}

// Mkfifos makes the FIFOs of a stdio directory; stderr only without a
// terminal, which merges the streams.
func Mkfifos(dir string, tty bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	names := []string{StdinFIFO, StdoutFIFO}
	if !tty {
		names = append(names, StderrFIFO)
	}
	for _, n := range names {
		if err := unix.Mkfifo(filepath.Join(dir, n), 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("make FIFO %s: %w", n, err)
		}
	}
	return nil
}
