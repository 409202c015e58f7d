package example

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

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

// runningAttempt returns the record and directory of the container's
// newest attempt; FailedPrecondition unless it runs.
func (r *Runtime) runningAttempt(uid, name string) (container, string, error) {
	var c container
	dirs, err := r.attempts(uid, name)
	if err != nil {
		return c, "", err
	}
	dir := dirs[len(dirs)-1]
	if st, _ := r.status(dir); st.GetState() != runtimev1.ContainerState_CONTAINER_STATE_RUNNING {
		return c, "", status.Errorf(codes.FailedPrecondition, "container %s of pod %s does not run", name, uid)
	}
	_, err = statefile.Read(filepath.Join(dir, "container.json"), &c)
	return c, dir, err
}

func (r *Runtime) Exec(srv grpc.BidiStreamingServer[runtimev1.ExecRequest, runtimev1.ExecResponse]) error {
	start, s, err := streams.Exec(srv)
	if err != nil {
		return err
	}
	c, dir, err := r.runningAttempt(start.GetPodUid(), start.GetContainer())
	if err != nil {
		return err
	}
	var spec specs.Spec // the command runs as the container's process does
	if _, err := statefile.Read(filepath.Join(dir, "config.json"), &spec); err != nil {
		return err
	}
	return r.runc.Exec(srv.Context(), c.Status.GetId(), *spec.Process, start, s)
}

func (r *Runtime) Attach(srv grpc.BidiStreamingServer[runtimev1.AttachRequest, runtimev1.AttachResponse]) error {
	since := time.Now()
	start, s, err := streams.Attach(srv)
	if err != nil {
		return err
	}
	c, dir, err := r.runningAttempt(start.GetPodUid(), start.GetContainer())
	if err != nil {
		return err
	}
	if start.GetStdin() {
		if !c.Stdin {
			return status.Errorf(codes.FailedPrecondition, "container %s was not started with stdin", start.GetContainer())
		}
		in, err := keeper.AttachStdin(dir)
		if err != nil {
			return err
		}
		defer in.Close()
		go func() { _, _ = io.Copy(in, s.Stdin); _ = in.Close() }() // ends when the call's stdin does
	}
	// Read by time, not from the log's end: nothing written while the
	// reader opens the file is missed.
	return crilog.Read(srv.Context(), keeper.LogPath(dir), crilog.Options{Follow: true, TailLines: -1, Since: since}, running(dir), s.Stdout, s.Stderr)
}

func (r *Runtime) PortForward(srv grpc.BidiStreamingServer[runtimev1.PortForwardRequest, runtimev1.PortForwardResponse]) error {
	return streams.Forward(srv, func(start *runtimev1.PortForwardStart) (io.ReadWriteCloser, error) {
		sb, err := r.sandbox(start.GetPodUid())
		if err != nil {
			return nil, err
		}
		conn, err := netns.Dial(srv.Context(), sb.Netns, "tcp", fmt.Sprintf("127.0.0.1:%d", start.GetPort()))
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "connect to port %d of pod %s: %v", start.GetPort(), start.GetPodUid(), err)
		}
		return conn, nil
	})
}
