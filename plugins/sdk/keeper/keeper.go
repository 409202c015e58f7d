// Package keeper runs a container's process under a supervisor of its own,
// which outlives the plugin that started it: the supervisor writes the
// process's output to a CRI log file, feeds its stdin from Attach calls,
// and records its start and its exit in files. A plugin restarted after a
// crash learns from the files what runs and how what ended ended, so it
// adopts its containers instead of losing them.
//
// The supervisor is the plugin's own executable, started again with an
// environment variable that makes Main run it: a plugin's main calls Main
// first. A test that starts containers from the test binary (the
// conformance kit's in-process mode) calls it first in TestMain.
package keeper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fedlet/fedlet/plugins/sdk/crilog"
	"github.com/fedlet/fedlet/plugins/sdk/statefile"
)

// dirEnv names the variable that makes Main run the supervisor of the
// process described in that directory.
const dirEnv = "FEDLET_KEEPER_DIR"

// Files of a supervisor's directory.
const (
	specFile    = "spec.json"
	startedFile = "started.json"
	exitedFile  = "exited.json"
	stdinSocket = "stdin.sock"
	ownLog      = "keeper.log" // the supervisor's own errors
	// LogFile is the process's output, in the CRI log format.
	LogFile = "output.log"
)

// outputGrace is how long the keeper reads the output of a process that
// exited before it records the exit.
const outputGrace = time.Second

// Spec says what to run.
type Spec struct {
	// Dir holds the supervisor's files, and is the process's working
	// directory; it must exist, and stay the process's for its whole life.
	// Keep it short: it holds a unix socket.
	Dir string `json:"-"`
	// Args is the command: a path and its arguments.
	Args []string `json:"args"`
	// Stdin keeps the process's stdin open for AttachStdin; without it the
	// process's stdin is empty.
	Stdin bool `json:"stdin,omitempty"`
	// StdinOnce ends the process's stdin when the first attached stdin
	// ends.
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// PidFile, when set, is where the command writes the pid of the
	// process it runs once that process runs (runc's --pid-file): only
	// then is the process started, with that pid. Without it the command
	// itself is the process, started once it is spawned.
	PidFile string `json:"pidFile,omitempty"`
}

// State is what the files say of a process.
type State struct {
	// Started: the process was started, with this pid, at StartedAt.
	Started   bool      `json:"-"`
	Pid       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	// Exited: the process has exited with ExitCode (128 + the signal's
	// number when a signal ended it) at FinishedAt.
	Exited     bool      `json:"-"`
	ExitCode   int       `json:"exitCode"`
	FinishedAt time.Time `json:"finishedAt"`
}

// LogPath is the path of the CRI log of the process supervised in dir.
func LogPath(dir string) string { return filepath.Join(dir, LogFile) }

// Start starts a supervisor for spec, detached from the calling process
// (its own session, so that the plugin's death does not end it), and
// returns once the process has started or failed to.
func Start(ctx context.Context, spec Spec) (State, error) {
	if err := statefile.Write(filepath.Join(spec.Dir, specFile), spec); err != nil {
		return State{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return State{}, fmt.Errorf("find this executable to run the supervisor: %w", err)
	}
	own, err := os.OpenFile(filepath.Join(spec.Dir, ownLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return State{}, fmt.Errorf("open the supervisor's log: %w", err)
	}
	defer own.Close()
	cmd := exec.Command(self)
	cmd.Dir = spec.Dir
	cmd.Env = append(os.Environ(), dirEnv+"="+spec.Dir)
	cmd.Stdout, cmd.Stderr = own, own
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return State{}, fmt.Errorf("start the supervisor of %s: %w", spec.Args[0], err)
	}
	// Reaped when it ends; the plugin may be gone by then, and init reaps it.
	go func() { _ = cmd.Wait() }()
	for {
		st, err := Read(spec.Dir)
		if err != nil || st.Started || st.Exited {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("wait for %s to start: %w", spec.Args[0], ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Read returns what the files in dir say of the process; a zero State
// when it has not started yet.
func Read(dir string) (State, error) {
	var st State
	var err error
	st.Started, err = statefile.Read(filepath.Join(dir, startedFile), &st)
	if err != nil {
		return st, err
	}
	var exit State
	if st.Exited, err = statefile.Read(filepath.Join(dir, exitedFile), &exit); err != nil {
		return st, err
	}
	st.ExitCode, st.FinishedAt = exit.ExitCode, exit.FinishedAt
	if st.Exited && !st.Started {
		st.StartedAt = exit.FinishedAt // it never ran
	}
	return st, nil
}

// AttachStdin connects to the stdin of the process supervised in dir:
// what is written to the connection is its input. Closing the connection
// ends the process's stdin when it was started with StdinOnce.
func AttachStdin(dir string) (net.Conn, error) {
	c, err := net.Dial("unix", filepath.Join(dir, stdinSocket))
	if err != nil {
		return nil, fmt.Errorf("connect to the stdin of the process in %s: %w", dir, err)
	}
	return c, nil
}

// Main runs the supervisor, and exits, when this process was started as
// one; otherwise it returns at once.
func Main() {
	dir := os.Getenv(dirEnv)
	if dir == "" {
		return
	}
	if err := supervise(dir); err != nil {
		fmt.Fprintf(os.Stderr, "keeper: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func supervise(dir string) error {
	var spec Spec
	if _, err := statefile.Read(filepath.Join(dir, specFile), &spec); err != nil {
		return err
	}
	log, err := crilog.Create(LogPath(dir))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(spec.Args[0], spec.Args[1:]...)
	// The process's own pipes, not os/exec's: its exit is recorded when it
	// exits, not when the last child it left behind closes its output.
	var outputs []*os.File
	for _, w := range []*io.Writer{&cmd.Stdout, &cmd.Stderr} {
		r, pw, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("make output pipes: %w", err)
		}
		defer pw.Close()
		*w, outputs = pw, append(outputs, r)
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if spec.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("make stdin: %w", err)
		}
		cmd.Stdin = r
		lis, err := net.Listen("unix", filepath.Join(dir, stdinSocket))
		if err != nil {
			return fmt.Errorf("listen for stdin: %w", err)
		}
		defer lis.Close()
		go feedStdin(lis, w, spec.StdinOnce) // ends when lis closes
	}
	if err := cmd.Start(); err != nil {
		code := 128
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		return statefile.Write(filepath.Join(dir, exitedFile), State{ExitCode: code, FinishedAt: time.Now()})
	}
	for _, w := range []io.Writer{cmd.Stdout, cmd.Stderr} {
		_ = w.(*os.File).Close() // the process holds them now
	}
	copied := make(chan struct{}, len(outputs))
	for i, r := range outputs {
		w := []io.Writer{log.Stdout(), log.Stderr()}[i]
		go func() { _, _ = io.Copy(w, r); copied <- struct{}{} }() // ends at the pipe's end, or at this process's
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	if pid, ok := started(spec, cmd.Process.Pid, waited); ok {
		if err := statefile.Write(filepath.Join(dir, startedFile), State{Pid: pid, StartedAt: time.Now()}); err != nil {
			return err
		}
	}
	<-waited
	// What it wrote before it exited, not what children it left write.
	grace, cancel := context.WithTimeout(context.Background(), outputGrace)
	defer cancel()
	for range outputs {
		select {
		case <-copied:
		case <-grace.Done():
		}
	}
	code := cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	return statefile.Write(filepath.Join(dir, exitedFile), State{ExitCode: code, FinishedAt: time.Now()})
}

// started waits until the process runs, and returns its pid: the
// command's own, or the one it writes to the pid file. It reports false
// when the command ended first.
func started(spec Spec, pid int, waited <-chan struct{}) (int, bool) {
	for spec.PidFile != "" {
		if data, err := os.ReadFile(spec.PidFile); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				return p, true
			}
		}
		select {
		case <-waited:
			return 0, false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return pid, true
}

// feedStdin copies each attached connection into the process's stdin, one
// after the other; with once, the end of the first ends stdin.
func feedStdin(lis net.Listener, w io.WriteCloser, once bool) {
	defer w.Close()
	for {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(w, c)
		_ = c.Close()
		if once {
			return
		}
	}
}
