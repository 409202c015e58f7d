package containerd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/fedlet/fedlet/plugins/runtime/containerd/logdriver"
)

// A container with stdin has FIFOs for its stdio. The shim holds its stdin
// open until CloseIO; a stdio keeper (logdriver.StdioArg) that the plugin
// starts in a session of its own writes the log, so that it outlives a
// crash of the plugin as the shim-owned log driver does for the other
// containers.

// keeperReadyTimeout bounds the wait for a stdio keeper's readiness.
const keeperReadyTimeout = 10 * time.Second

// stdioDir is where the FIFOs of an attempt live; the pod's directory, and
// so they, go with its sandbox.
func (s *session) stdioDir(podUID, id string) string {
	return filepath.Join(s.podDir(podUID), "stdio", id)
}

// stdinIO makes the FIFOs of the attempt rec, starts its stdio keeper and
// returns the task's I/O over the FIFOs, and a function that stops the
// keeper if the task could not be made.
func (s *session) stdinIO(ctx context.Context, rec containers.Container) (cio.Creator, func(), error) {
	l := rec.Labels
	tty := l[labelTTY] == "true"
	dir := s.stdioDir(l[LabelPodUID], rec.ID)
	if err := logdriver.Mkfifos(dir, tty); err != nil {
		return nil, nil, fmt.Errorf("stdio of container %s: %w", rec.ID, err)
	}
	keeper, err := s.startKeeper(ctx, dir, s.logPath(l[LabelPodUID], l[LabelContainer], labelAttempt(l)))
	if err != nil {
		return nil, nil, fmt.Errorf("stdio of container %s: %w", rec.ID, err)
	}
	cfg := cio.Config{
		Terminal: tty,
		Stdin:    filepath.Join(dir, logdriver.StdinFIFO),
		Stdout:   filepath.Join(dir, logdriver.StdoutFIFO),
	}
	if !tty {
		cfg.Stderr = filepath.Join(dir, logdriver.StderrFIFO)
	}
	creator := func(string) (cio.IO, error) { return fifoIO{cfg}, nil }
	return creator, func() { _ = keeper.Process.Kill() }, nil
}

// startKeeper starts the stdio keeper and waits until it has opened the log.
func (s *session) startKeeper(ctx context.Context, dir, logPath string) (*exec.Cmd, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(s.logDriver, logdriver.StdioArg, dir, logPath)
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stderr, err := os.OpenFile(filepath.Join(dir, "keeper.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		w.Close()
		return nil, err
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	err = cmd.Start()
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("start stdio keeper: %w", err)
	}
	// Reaped here while the plugin lives; after a crash of the plugin its
	// new parent does.
	go func() { _ = cmd.Wait() }()

	ready := make(chan bool, 1)
	go func() {
		n, _ := r.Read(make([]byte, 1)) // a byte, or EOF if the keeper failed
		ready <- n == 1
	}()
	select {
	case ok := <-ready:
		if !ok {
			return nil, fmt.Errorf("stdio keeper exited at start (see %s)", filepath.Join(dir, "keeper.log"))
		}
	case <-time.After(keeperReadyTimeout):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("stdio keeper not ready after %s (see %s)", keeperReadyTimeout, filepath.Join(dir, "keeper.log"))
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return nil, ctx.Err()
	}
	return cmd, nil
}

// fifoIO is a task's I/O through FIFOs that the plugin does not read: the
// keeper does.
type fifoIO struct{ cfg cio.Config }

func (f fifoIO) Config() cio.Config { return f.cfg }
func (fifoIO) Cancel()              {}
func (fifoIO) Wait()                {}
func (fifoIO) Close() error         { return nil }
