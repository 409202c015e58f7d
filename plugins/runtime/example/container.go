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
	"github.com/fedlet/fedlet/plugins/sdk/crilog"
	"github.com/fedlet/fedlet/plugins/sdk/keeper"
	"github.com/fedlet/fedlet/plugins/sdk/netns"
	"github.com/fedlet/fedlet/plugins/sdk/ocispec"
	"github.com/fedlet/fedlet/plugins/sdk/podstore"
	"github.com/fedlet/fedlet/plugins/sdk/statefile"
	"github.com/fedlet/fedlet/plugins/sdk/streams"
)

// StartContainer makes runc's bundle in the attempt's directory (the
// image under an overlay, the OCI spec) and has a keeper run `runc run`
// there, so that the container outlives this process.
func (r *Runtime) StartContainer(ctx context.Context, req *runtimev1.StartContainerRequest) (*runtimev1.ContainerStatus, error) {
	spec, pod := req.GetContainer(), req.GetPod()
	sb, err := r.pods.Sandbox(pod.GetUid())
	if err != nil {
		return nil, err
	}
	dir := r.pods.AttemptDir(pod.GetUid(), spec.GetName(), req.GetAttempt())
	if podstore.Started(dir) { // this attempt ran already: start nothing
		a, err := r.pods.Attempt(dir)
		return a.Status, err
	}
	img, err := r.images.Get(spec.GetImage())
	if err != nil {
		return nil, err
	}
	rootfs, err := img.Mount(dir)
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%s-%s-%d", pod.GetUid(), spec.GetName(), req.GetAttempt())
	a := podstore.Attempt{Dir: dir, Stdin: spec.GetStdin(), Status: &runtimev1.ContainerStatus{Pod: pod, Name: spec.GetName(),
		Attempt: req.GetAttempt(), Id: id, Image: spec.GetImage(), ImageRef: img.Ref, CreatedAtUnixNano: time.Now().UnixNano()}}
	oci, err := ocispec.Build(ctx, ocispec.Container{ID: id, CgroupParent: "fedlet-example", Spec: spec, Image: img.Config,
		RootFS: rootfs, Netns: sb.GetNetnsPath(), TerminationLog: a.TerminationLog()})
	if err != nil {
		return nil, err
	}
	a.Data = map[string]string{"cgroup": oci.Linux.CgroupsPath}
	if err := statefile.Write(filepath.Join(dir, "config.json"), oci); err != nil {
		return nil, err
	}
	if err := r.pods.Record(a); err != nil {
		return nil, err
	}
	pidFile := filepath.Join(dir, "pid")
	run := keeper.Spec{Dir: dir, Args: r.runc.RunArgs(dir, id, pidFile), PidFile: pidFile, Stdin: spec.GetStdin(), StdinOnce: spec.GetStdinOnce()}
	if _, err := keeper.Start(ctx, run); err != nil {
		return nil, err
	}
	a, err = r.pods.Attempt(dir)
	return a.Status, err
}

// Exec runs the command as the container's process runs: with its user,
// environment and working directory, from the bundle's spec.
func (r *Runtime) Exec(srv grpc.BidiStreamingServer[runtimev1.ExecRequest, runtimev1.ExecResponse]) error {
	start, s, err := streams.Exec(srv)
	if err != nil {
		return err
	}
	a, err := r.pods.Running(start.GetPodUid(), start.GetContainer())
	if err != nil {
		return err
	}
	var spec specs.Spec
	if _, err := statefile.Read(filepath.Join(a.Dir, "config.json"), &spec); err != nil {
		return err
	}
	return r.runc.Exec(srv.Context(), a.Status.GetId(), *spec.Process, start, s)
}

// Attach writes stdin through the container's keeper, and reads its output
// from its log.
func (r *Runtime) Attach(srv grpc.BidiStreamingServer[runtimev1.AttachRequest, runtimev1.AttachResponse]) error {
	since := time.Now()
	start, s, err := streams.Attach(srv)
	if err != nil {
		return err
	}
	a, err := r.pods.Running(start.GetPodUid(), start.GetContainer())
	if err != nil {
		return err
	}
	if start.GetStdin() {
		if !a.Stdin {
			return status.Errorf(codes.FailedPrecondition, "container %s was not started with stdin", start.GetContainer())
		}
		in, err := keeper.AttachStdin(a.Dir)
		if err != nil {
			return err
		}
		defer in.Close()
		go func() { _, _ = io.Copy(in, s.Stdin); _ = in.Close() }() // ends when the call's stdin does
	}
	// Read by time, not from the log's end: nothing written while the
	// reader opens the file is missed.
	return crilog.Read(srv.Context(), a.LogPath(), crilog.Options{Follow: true, TailLines: -1, Since: since}, a.Running, s.Stdout, s.Stderr)
}

// PortForward dials the port on the loopback of the pod's network
// namespace.
func (r *Runtime) PortForward(srv grpc.BidiStreamingServer[runtimev1.PortForwardRequest, runtimev1.PortForwardResponse]) error {
	return streams.Forward(srv, func(start *runtimev1.PortForwardStart) (io.ReadWriteCloser, error) {
		sb, err := r.pods.Sandbox(start.GetPodUid())
		if err != nil {
			return nil, err
		}
		conn, err := netns.Dial(srv.Context(), sb.GetNetnsPath(), "tcp", fmt.Sprintf("127.0.0.1:%d", start.GetPort()))
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "connect to port %d of pod %s: %v", start.GetPort(), start.GetPodUid(), err)
		}
		return conn, nil
	})
}
