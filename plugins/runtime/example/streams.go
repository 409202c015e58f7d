package example

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
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/containerwatch"
	"github.com/fedlet/fedlet/plugins/sdk/crilog"
	"github.com/fedlet/fedlet/plugins/sdk/keeper"
	"github.com/fedlet/fedlet/plugins/sdk/netns"
	"github.com/fedlet/fedlet/plugins/sdk/statefile"
	"github.com/fedlet/fedlet/plugins/sdk/streams"
)

func (r *Runtime) WatchContainers(_ *runtimev1.WatchContainersRequest, srv grpc.ServerStreamingServer[runtimev1.ContainerStatus]) error {
	return containerwatch.Poll(srv, 0, func(ctx context.Context) ([]*runtimev1.ContainerStatus, error) {
		resp, err := r.ListSandboxes(ctx, nil)
		var all []*runtimev1.ContainerStatus
		for _, sb := range resp.GetSandboxes() {
			all = append(all, sb.GetContainers()...)
		}
		return all, err
	})
}

// running says whether the attempt in dir may still write output.
func running(dir string) func() bool {
	return func() bool { st, _ := keeper.Read(dir); return !st.Exited }
}

func (r *Runtime) ContainerLogs(req *runtimev1.ContainerLogsRequest, srv grpc.ServerStreamingServer[runtimev1.LogChunk]) error {
	dirs, err := r.attempts(req.GetPodUid(), req.GetContainer())
	if err == nil && req.GetPrevious() && len(dirs) < 2 {
		err = status.Errorf(codes.NotFound, "container %s has no previous attempt", req.GetContainer())
	}
	if err != nil {
		return err
	}
	dir := dirs[len(dirs)-1]
	if req.GetPrevious() {
		dir = dirs[len(dirs)-2]
	}
	return crilog.Send(srv.Context(), keeper.LogPath(dir), req, running(dir), srv)
}

// runningAttempt returns the directory of the container's newest attempt,
// FailedPrecondition unless it runs.
func (r *Runtime) runningAttempt(uid, name string) (string, error) {
	dirs, err := r.attempts(uid, name)
	if err != nil {
		return "", err
	}
	if st, _ := r.status(dirs[len(dirs)-1]); st.GetState() != runtimev1.ContainerState_CONTAINER_STATE_RUNNING {
		return "", status.Errorf(codes.FailedPrecondition, "container %s of pod %s does not run", name, uid)
	}
	return dirs[len(dirs)-1], nil
}

func (r *Runtime) Exec(srv grpc.BidiStreamingServer[runtimev1.ExecRequest, runtimev1.ExecResponse]) error {
	start, s, err := streams.Exec(srv)
	if err != nil {
		return err
	}
	if len(start.GetCommand()) == 0 {
		return status.Error(codes.InvalidArgument, "command: exec of no command")
	}
	dir, err := r.runningAttempt(start.GetPodUid(), start.GetContainer())
	if err != nil {
		return err
	}
	// The command runs as the container's process does, with its user,
	// environment and working directory.
	var spec specs.Spec
	if _, err := statefile.Read(filepath.Join(dir, "config.json"), &spec); err != nil {
		return err
	}
	proc := *spec.Process
	proc.Args, proc.Terminal = start.GetCommand(), start.GetTty()
	if sz := start.GetSize(); sz != nil {
		proc.ConsoleSize = &specs.Box{Width: uint(sz.GetWidth()), Height: uint(sz.GetHeight())}
	}
	procFile, err := os.CreateTemp(dir, "exec-*.json")
	if err != nil {
		return fmt.Errorf("write exec process: %w", err)
	}
	defer os.Remove(procFile.Name())
	if err := json.NewEncoder(procFile).Encode(proc); err != nil {
		return fmt.Errorf("write exec process: %w", err)
	}
	_ = procFile.Close()
	var c container
	_, _ = statefile.Read(filepath.Join(dir, "container.json"), &c)
	// Detached, runc hands the command this call's pipes and returns: the
	// command ends when it exits, whatever children it leaves holding them.
	// It is reparented to this process (a subreaper), which waits for it.
	cmd := exec.CommandContext(srv.Context(), "runc", "--root", filepath.Join(r.dir, "runc"), "exec", "--detach", "--pid-file", procFile.Name()+".pid", "--process", procFile.Name())
	defer os.Remove(procFile.Name() + ".pid")
	var outputs []*os.File
	var master console.Console
	if start.GetTty() {
		sock, err := runc.NewTempConsoleSocket()
		if err != nil {
			return fmt.Errorf("make console socket: %w", err)
		}
		defer sock.Close()
		cmd.Args = append(cmd.Args, "--console-socket", sock.Path(), c.ID)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("runc exec: %w", err)
		}
		if master, err = sock.ReceiveMaster(); err != nil {
			return fmt.Errorf("receive the exec's terminal: %w (runc exec: %v)", err, cmd.Wait())
		}
		defer master.Close()
		s.OnResize(func(sz *runtimev1.TerminalSize) { _ = master.Resize(console.WinSize{Width: uint16(sz.GetWidth()), Height: uint16(sz.GetHeight())}) })
		go func() { _, _ = io.Copy(master, s.Stdin) }() // ends when the call's stdin does
	} else {
		stdout, stdoutW, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("make exec pipes: %w", err)
		}
		stderr, stderrW, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("make exec pipes: %w", err)
		}
		defer stdout.Close() // ends the copies, if a child still holds the pipes
		defer stderr.Close()
		outputs = []*os.File{stdout, stderr}
		cmd.Args = append(cmd.Args, c.ID)
		cmd.Stdout, cmd.Stderr = stdoutW, stderrW
		if start.GetStdin() {
			stdin, stdinW, err := os.Pipe()
			if err != nil {
				return fmt.Errorf("make exec pipes: %w", err)
			}
			defer stdin.Close()
			cmd.Stdin = stdin
			go func() { _, _ = io.Copy(stdinW, s.Stdin); _ = stdinW.Close() }() // ends when the call's stdin does
		}
		err = cmd.Start()
		_, _ = stdoutW.Close(), stderrW.Close() // the command holds them now
		if err != nil {
			return fmt.Errorf("runc exec: %w", err)
		}
	}
	copied := make(chan struct{}, 2)
	copyOut := func(w io.Writer, r io.ReadCloser) { _, _ = io.Copy(w, r); copied <- struct{}{} }
	if master != nil {
		go copyOut(s.Stdout, master)
	} else {
		go copyOut(s.Stdout, outputs[0])
		go copyOut(s.Stderr, outputs[1])
	}
	code := waitExec(cmd, procFile.Name()+".pid")
	// What the command wrote before it exited, not what children it left
	// behind write later: the output is read up to a short deadline.
	grace, cancel := context.WithTimeout(srv.Context(), 200*time.Millisecond)
	defer cancel()
	for range max(1, len(outputs)) {
		select {
		case <-copied:
		case <-grace.Done():
		}
	}
	return s.Exit(int32(code))
}

// waitExec waits for runc exec, then for the command it started, and
// returns the command's exit code (runc's when it started none).
func waitExec(cmd *exec.Cmd, pidFile string) int {
	if err := cmd.Wait(); err != nil {
		return cmd.ProcessState.ExitCode()
	}
	data, err := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	proc, perr := os.FindProcess(pid)
	if err != nil || perr != nil || pid <= 0 {
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

func (r *Runtime) Attach(srv grpc.BidiStreamingServer[runtimev1.AttachRequest, runtimev1.AttachResponse]) error {
	since := time.Now()
	start, s, err := streams.Attach(srv)
	if err != nil {
		return err
	}
	dir, err := r.runningAttempt(start.GetPodUid(), start.GetContainer())
	if err != nil {
		return err
	}
	if start.GetStdin() {
		var c container
		if _, err := statefile.Read(filepath.Join(dir, "container.json"), &c); err != nil || !c.Stdin {
			return status.Errorf(codes.FailedPrecondition, "container %s was not started with stdin (%v)", start.GetContainer(), err)
		}
		in, err := keeper.AttachStdin(dir)
		if err != nil {
			return err
		}
		defer in.Close()
		go func() { _, _ = io.Copy(in, s.Stdin); _ = in.Close() }() // ends when the call's stdin does
	}
	// The output written since the call came: the log read by time, not
	// from its end, misses nothing written while the reader opens it.
	return crilog.Read(srv.Context(), keeper.LogPath(dir), crilog.Options{Follow: true, TailLines: -1, Since: since}, running(dir), s.Stdout, s.Stderr)
}

func (r *Runtime) PortForward(srv grpc.BidiStreamingServer[runtimev1.PortForwardRequest, runtimev1.PortForwardResponse]) error {
	return streams.Forward(srv, func(start *runtimev1.PortForwardStart) (io.ReadWriteCloser, error) {
		var sb sandbox
		if ok, err := statefile.Read(filepath.Join(r.podDir(start.GetPodUid()), "sandbox.json"), &sb); !ok || err != nil {
			return nil, status.Errorf(codes.NotFound, "pod %s has no sandbox (%v)", start.GetPodUid(), err)
		}
		conn, err := netns.Dial(srv.Context(), sb.Netns, "tcp", fmt.Sprintf("127.0.0.1:%d", start.GetPort()))
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "connect to port %d of pod %s: %v", start.GetPort(), start.GetPodUid(), err)
		}
		return conn, nil
	})
}
