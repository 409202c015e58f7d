package example

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/imagestore"
	"github.com/fedlet/fedlet/plugins/sdk/keeper"
	"github.com/fedlet/fedlet/plugins/sdk/ocispec"
	"github.com/fedlet/fedlet/plugins/sdk/statefile"
)

// container is the record of one attempt of a container. Its directory
// holds the record, runc's bundle and the keeper's files (output, start,
// exit).
type container struct {
	Status *runtimev1.ContainerStatus // as created; the rest is read from the keeper
	Stdin  bool
	Cgroup string
}

func nowNano() int64 { return time.Now().UnixNano() }

func (r *Runtime) attemptDir(uid, name string, attempt uint32) string {
	return filepath.Join(r.podDir(uid), short(name+"/"+strconv.Itoa(int(attempt))))
}

func (r *Runtime) StartContainer(ctx context.Context, req *runtimev1.StartContainerRequest) (*runtimev1.ContainerStatus, error) {
	spec, pod := req.GetContainer(), req.GetPod()
	sb, err := r.sandbox(pod.GetUid())
	if err != nil {
		return nil, err
	}
	dir := r.attemptDir(pod.GetUid(), spec.GetName(), req.GetAttempt())
	if st, _ := keeper.Read(dir); st.Started || st.Exited {
		return r.status(dir) // this attempt ran already: start nothing
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
	oci, err := ocispec.Build(ctx, ocispec.Container{ID: id, CgroupParent: "fedlet-example", Spec: spec, Image: img.Config, RootFS: rootfs,
		Netns: sb.Netns, TerminationLog: filepath.Join(dir, "termination-log")})
	if err != nil {
		return nil, err
	}
	c := container{Status: &runtimev1.ContainerStatus{Pod: pod, Name: spec.GetName(), Attempt: req.GetAttempt(), Id: id,
		Image: spec.GetImage(), ImageRef: img.Ref, CreatedAtUnixNano: nowNano()}, Stdin: spec.GetStdin(), Cgroup: oci.Linux.CgroupsPath}
	if err := statefile.Write(filepath.Join(dir, "config.json"), oci); err != nil {
		return nil, err
	}
	if err := statefile.Write(filepath.Join(dir, "container.json"), c); err != nil {
		return nil, err
	}
	run := keeper.Spec{Dir: dir, Args: r.runc.RunArgs(dir, id, filepath.Join(dir, "pid")), PidFile: filepath.Join(dir, "pid"), Stdin: spec.GetStdin(), StdinOnce: spec.GetStdinOnce()}
	if _, err := keeper.Start(ctx, run); err != nil {
		return nil, err
	}
	return r.status(dir)
}

// status is what the attempt in dir is now; NotFound when it is gone.
func (r *Runtime) status(dir string) (*runtimev1.ContainerStatus, error) {
	var c container
	if ok, err := statefile.Read(filepath.Join(dir, "container.json"), &c); !ok || err != nil {
		return nil, status.Errorf(codes.NotFound, "no container in %s (%v)", dir, err)
	}
	st, err := keeper.Read(dir)
	cs := c.Status
	cs.State = runtimev1.ContainerState_CONTAINER_STATE_CREATED
	if !st.StartedAt.IsZero() {
		cs.State, cs.StartedAtUnixNano = runtimev1.ContainerState_CONTAINER_STATE_RUNNING, st.StartedAt.UnixNano()
	}
	if st.Exited {
		cs.State, cs.ExitCode, cs.FinishedAtUnixNano = runtimev1.ContainerState_CONTAINER_STATE_EXITED, int32(st.ExitCode), st.FinishedAt.UnixNano()
		cs.Reason = map[bool]string{true: "Completed", false: "Error"}[st.ExitCode == 0]
		if st.ExitCode != 0 && ocispec.OOMKilled(c.Cgroup) {
			cs.Reason = "OOMKilled"
		}
		cs.Message = ocispec.TerminationMessage(filepath.Join(dir, "termination-log"))
	}
	return cs, err
}

// containers lists every attempt of every container of the pod in podDir.
func (r *Runtime) containers(podDir string) []*runtimev1.ContainerStatus {
	files, _ := filepath.Glob(filepath.Join(podDir, "*", "container.json"))
	var out []*runtimev1.ContainerStatus
	for _, f := range files {
		if st, err := r.status(filepath.Dir(f)); err == nil {
			out = append(out, st)
		}
	}
	return out
}

// attempts returns the directories of the container's attempts, oldest
// first; NotFound when it has none.
func (r *Runtime) attempts(uid, name string) ([]string, error) {
	ctrs := r.containers(r.podDir(uid))
	sort.Slice(ctrs, func(i, j int) bool { return ctrs[i].GetAttempt() < ctrs[j].GetAttempt() })
	var dirs []string
	for _, c := range ctrs {
		if c.GetName() == name {
			dirs = append(dirs, r.attemptDir(uid, name, c.GetAttempt()))
		}
	}
	if len(dirs) == 0 {
		return nil, status.Errorf(codes.NotFound, "pod %s has no container %s", uid, name)
	}
	return dirs, nil
}

func (r *Runtime) StopContainer(ctx context.Context, req *runtimev1.StopContainerRequest) (*runtimev1.ContainerStatus, error) {
	dirs, err := r.attempts(req.GetPodUid(), req.GetName())
	if err != nil {
		return nil, err
	}
	dir := dirs[len(dirs)-1]
	st, err := r.status(dir)
	grace := time.Duration(req.GetGracePeriodSeconds()) * time.Second
	for _, sig := range []string{"TERM", "KILL"} {
		if err != nil || st.GetState() == runtimev1.ContainerState_CONTAINER_STATE_EXITED {
			break
		}
		_ = r.runc.Kill(ctx, st.GetId(), sig) // fails when it has just exited
		st, err = r.waitExit(ctx, dir, grace)
		grace = time.Minute
	}
	return st, err
}

// waitExit waits up to timeout for the attempt in dir to exit, and
// returns its status then.
func (r *Runtime) waitExit(ctx context.Context, dir string, timeout time.Duration) (*runtimev1.ContainerStatus, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := r.status(dir)
		if err != nil || st.GetState() == runtimev1.ContainerState_CONTAINER_STATE_EXITED || time.Now().After(deadline) {
			return st, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *Runtime) RemoveContainer(ctx context.Context, req *runtimev1.RemoveContainerRequest) (*runtimev1.RemoveContainerResponse, error) {
	dirs, _ := r.attempts(req.GetPodUid(), req.GetName())
	for _, dir := range dirs {
		if st, _ := r.status(dir); st.GetAttempt() < req.GetKeepAttempt() && st.GetState() == runtimev1.ContainerState_CONTAINER_STATE_EXITED {
			if err := r.removeAttempt(ctx, dir); err != nil {
				return nil, err
			}
		}
	}
	return &runtimev1.RemoveContainerResponse{}, nil
}

// removeAttempt kills the attempt in dir if it runs, deletes it from runc
// and removes its directory.
func (r *Runtime) removeAttempt(ctx context.Context, dir string) error {
	if st, err := r.status(dir); err == nil {
		_ = r.runc.Delete(ctx, st.GetId()) // fails when runc never made it
		if st.GetState() == runtimev1.ContainerState_CONTAINER_STATE_RUNNING {
			if _, err := r.waitExit(ctx, dir, 10*time.Second); err != nil {
				return err
			}
		}
	}
	if err := imagestore.Unmount(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
