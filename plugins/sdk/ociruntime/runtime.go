// Package ociruntime drives an OCI runtime (runc, or one with runc's
// command line, such as crun) for a runtime plugin: the command line that
// runs a container (under a keeper, plugins/sdk/keeper, so that it
// outlives the plugin), signals, deletion, and Exec served whole, with a
// terminal or without.
package ociruntime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/console"
	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/streams"
)

// Runtime is an OCI runtime binary and the directory of its state.
type Runtime struct {
	// Binary is the runtime's path or name in PATH; "runc" when empty.
	Binary string
	// Root is the runtime's state directory (--root).
	Root string
}

func (rt Runtime) command(ctx context.Context, args ...string) *exec.Cmd {
	bin := rt.Binary
	if bin == "" {
		bin = "runc"
	}
	return exec.CommandContext(ctx, bin, append([]string{"--root", rt.Root}, args...)...)
}

// RunArgs is the command line that creates and starts the container of the
// bundle, stays in the foreground until it exits, exits with its code, and
// keeps it (and its cgroup) until Delete. The container's pid goes to
// pidFile once it runs: keeper.Spec.PidFile.
func (rt Runtime) RunArgs(bundle, id, pidFile string) []string {
	return rt.command(context.Background(), "run", "--keep", "--pid-file", pidFile, "--bundle", bundle, id).Args
}

// Kill sends the container's process a signal ("TERM", "KILL").
func (rt Runtime) Kill(ctx context.Context, id, signal string) error {
	return rt.run(ctx, "kill", id, signal)
}

// Delete kills what the container still runs and removes it and its
// cgroup.
func (rt Runtime) Delete(ctx context.Context, id string) error {
	return rt.run(ctx, "delete", "--force", id)
}

func (rt Runtime) run(ctx context.Context, args ...string) error {
	out, err := rt.command(ctx, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", rt.Binary, strings.Join(args, " "), err, out)
	}
	return nil
}

// BecomeSubreaper makes this process the reaper of its orphaned
// descendants. Exec needs it: a command the runtime starts detached is
// reparented to this process, which waits for it.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become a subreaper: %w", err)
	}
	return nil
}

// outputGrace is how long Exec reads a command's output after it exited:
// what it wrote before, not what children it left behind write later.
const outputGrace = 200 * time.Millisecond

// Exec serves an Exec call in container id, whose process is container
// (its user, environment and working directory: the bundle's spec): it
// runs start's command there, with a terminal of start's size when start
// asks for one, feeds it the session's stdin, sends its output, and ends
// with its exit code once it has exited, whatever children it left. The
// process must be a subreaper (BecomeSubreaper).
func (rt Runtime) Exec(ctx context.Context, id string, container specs.Process, start *runtimev1.ExecStart, s *streams.ExecSession) error {
	proc := container
	proc.Args, proc.Terminal = start.GetCommand(), start.GetTty()
	if sz := start.GetSize(); sz != nil {
		proc.ConsoleSize = &specs.Box{Width: uint(sz.GetWidth()), Height: uint(sz.GetHeight())}
	}
	dir, err := os.MkdirTemp("", "exec-")
	if err != nil {
		return fmt.Errorf("exec in %s: %w", id, err)
	}
	defer os.RemoveAll(dir)
	procFile, pidFile := filepath.Join(dir, "process.json"), filepath.Join(dir, "pid")
	data, err := json.Marshal(proc)
	if err == nil {
		err = os.WriteFile(procFile, data, 0o600)
	}
	if err != nil {
		return fmt.Errorf("exec in %s: write its process: %w", id, err)
	}
	// Detached, the runtime hands the command this call's pipes and
	// returns; the command is reparented to this process.
	cmd := rt.command(ctx, "exec", "--detach", "--pid-file", pidFile, "--process", procFile)
	var outputs []io.Reader
	if start.GetTty() {
		sock, err := runc.NewTempConsoleSocket()
		if err != nil {
			return fmt.Errorf("exec in %s: make console socket: %w", id, err)
		}
		defer sock.Close()
		cmd.Args = append(cmd.Args, "--console-socket", sock.Path(), id)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("exec in %s: %w", id, err)
		}
		master, err := sock.ReceiveMaster()
		if err != nil {
			return fmt.Errorf("exec in %s: receive its terminal: %w (%v)", id, err, cmd.Wait())
		}
		defer master.Close() // ends the copies
		s.OnResize(func(sz *runtimev1.TerminalSize) {
			_ = master.Resize(console.WinSize{Width: uint16(sz.GetWidth()), Height: uint16(sz.GetHeight())})
		})
		go func() { _, _ = io.Copy(master, s.Stdin) }() // ends when the call's stdin does
		outputs = []io.Reader{master}
	} else {
		cmd.Args = append(cmd.Args, id)
		var closeAfterStart []*os.File
		for _, w := range []*io.Writer{&cmd.Stdout, &cmd.Stderr} {
			r, pw, err := os.Pipe()
			if err != nil {
				return fmt.Errorf("exec in %s: %w", id, err)
			}
			defer r.Close() // ends the copies, if a child still holds the pipe
			*w, outputs, closeAfterStart = pw, append(outputs, r), append(closeAfterStart, pw)
		}
		if start.GetStdin() {
			r, pw, err := os.Pipe()
			if err != nil {
				return fmt.Errorf("exec in %s: %w", id, err)
			}
			cmd.Stdin, closeAfterStart = r, append(closeAfterStart, r)
			go func() { _, _ = io.Copy(pw, s.Stdin); _ = pw.Close() }() // ends when the call's stdin does
		}
		err := cmd.Start()
		for _, f := range closeAfterStart {
			_ = f.Close() // the command holds them now
		}
		if err != nil {
			return fmt.Errorf("exec in %s: %w", id, err)
		}
	}
	copied := make(chan struct{}, len(outputs))
	for i, r := range outputs {
		w := []io.Writer{s.Stdout, s.Stderr}[i]
		go func() { _, _ = io.Copy(w, r); copied <- struct{}{} }()
	}
	code := waitDetached(cmd, pidFile)
	grace, cancel := context.WithTimeout(ctx, outputGrace)
	defer cancel()
	for range outputs {
		select {
		case <-copied:
		case <-grace.Done():
		}
	}
	return s.Exit(int32(code))
}

// waitDetached waits for the runtime, then for the command it started,
// and returns the command's exit code (the runtime's when it started
// none).
func waitDetached(cmd *exec.Cmd, pidFile string) int {
	if err := cmd.Wait(); err != nil {
		return cmd.ProcessState.ExitCode()
	}
	data, _ := os.ReadFile(pidFile)
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 128
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return 128
	}
	st, err := proc.Wait()
	if err != nil {
		return 128
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}
