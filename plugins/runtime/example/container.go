package example

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/keeper"
	"github.com/fedlet/fedlet/plugins/sdk/statefile"
)

// container is the record of one attempt of a container; its directory
// holds the record, runc's bundle (config.json, rootfs) and the keeper's
// files (output, start, exit).
type container struct {
	Pod       *runtimev1.PodRef `json:"pod"`
	Name      string            `json:"name"`
	Attempt   uint32            `json:"attempt"`
	ID        string            `json:"id"`
	Image     string            `json:"image"`
	ImageRef  string            `json:"imageRef"`
	CreatedAt int64             `json:"createdAt"`
	Stdin     bool              `json:"stdin,omitempty"`
}

// namespace groups the containers' cgroups, under /sys/fs/cgroup/.../example.
const namespace = "example"

func (r *Runtime) ctrDir(uid, name string, attempt uint32) string {
	return filepath.Join(r.podDir(uid), short(name+"/"+strconv.Itoa(int(attempt))))
}

func (r *Runtime) runc(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "runc", append([]string{"--root", filepath.Join(r.dir, "runc")}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("runc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (r *Runtime) StartContainer(ctx context.Context, req *runtimev1.StartContainerRequest) (*runtimev1.ContainerStatus, error) {
	spec, uid := req.GetContainer(), req.GetPod().GetUid()
	if spec.GetImage() == "" {
		return nil, status.Error(codes.InvalidArgument, "container.image: the container names no image")
	}
	var sb sandbox
	if ok, err := statefile.Read(filepath.Join(r.podDir(uid), "sandbox.json"), &sb); !ok || err != nil {
		return nil, status.Errorf(codes.NotFound, "pod %s has no sandbox (%v)", uid, err)
	}
	dir := r.ctrDir(uid, spec.GetName(), req.GetAttempt())
	if st, _ := keeper.Read(dir); st.Started || st.Exited {
		return r.status(dir) // this attempt ran already: start nothing
	}
	var img image
	if ok, err := statefile.Read(r.imagePath(spec.GetImage()), &img); !ok || err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "image %s is not pulled (%v)", spec.GetImage(), err)
	}
	c := container{Pod: req.GetPod(), Name: spec.GetName(), Attempt: req.GetAttempt(), ID: fmt.Sprintf("%s-%s-%d", uid, spec.GetName(), req.GetAttempt()),
		Image: spec.GetImage(), ImageRef: img.Ref, CreatedAt: time.Now().UnixNano(), Stdin: spec.GetStdin()}
	if err := r.bundle(ctx, dir, c, sb, img, spec); err != nil {
		return nil, err
	}
	if err := statefile.Write(filepath.Join(dir, "container.json"), c); err != nil {
		return nil, err
	}
	pidFile := filepath.Join(dir, "pid")
	run := []string{"runc", "--root", filepath.Join(r.dir, "runc"), "run", "--keep", "--pid-file", pidFile, "--bundle", dir, c.ID}
	if _, err := keeper.Start(ctx, keeper.Spec{Dir: dir, Args: run, Stdin: spec.GetStdin(), StdinOnce: spec.GetStdinOnce(), PidFile: pidFile}); err != nil {
		return nil, err
	}
	return r.status(dir)
}

// bundle makes runc's bundle in dir: the image's root filesystem under an
// overlay of the container's own, and the OCI spec of the container.
func (r *Runtime) bundle(ctx context.Context, dir string, c container, sb sandbox, img image, spec *runtimev1.ContainerSpec) error {
	for _, d := range []string{"rootfs", "upper", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return fmt.Errorf("make bundle of %s: %w", c.ID, err)
		}
	}
	layers := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", filepath.Join(img.Dir, "rootfs"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	_ = unix.Unmount(filepath.Join(dir, "rootfs"), unix.MNT_DETACH) // a start cut short left one
	if err := unix.Mount("overlay", filepath.Join(dir, "rootfs"), "overlay", 0, layers); err != nil {
		return fmt.Errorf("mount the root filesystem of %s: %w", c.ID, err)
	}
	sec := spec.GetSecurity()
	if sec == nil {
		sec = &runtimev1.SecurityContext{}
	}
	who := img.Config.Config.User
	if sec.RunAsUser != nil {
		who = strconv.FormatInt(sec.GetRunAsUser(), 10)
	}
	if sec.RunAsGroup != nil {
		who = strings.SplitN(who, ":", 2)[0] + ":" + strconv.FormatInt(sec.GetRunAsGroup(), 10)
	}
	u, err := user.GetExecUserPath(who, &user.ExecUser{}, filepath.Join(dir, "rootfs/etc/passwd"), filepath.Join(dir, "rootfs/etc/group"))
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "user %q of %s: %v", who, c.ID, err)
	}
	if sec.GetRunAsNonRoot() && u.Uid == 0 {
		return status.Errorf(codes.PermissionDenied, "%s would run as root, and must not", c.ID)
	}
	args := append(img.Config.Config.Entrypoint, img.Config.Config.Cmd...)
	if len(spec.GetCommand()) > 0 {
		args = append(spec.GetCommand(), spec.GetArgs()...)
	} else if len(spec.GetArgs()) > 0 {
		args = append(img.Config.Config.Entrypoint, spec.GetArgs()...)
	}
	env := img.Config.Config.Env
	for _, kv := range spec.GetEnv() {
		env = append(env, kv.GetKey()+"="+kv.GetValue())
	}
	cwd := spec.GetWorkingDir()
	if cwd == "" {
		cwd = img.Config.Config.WorkingDir
	}
	opts := []oci.SpecOpts{oci.WithRootFSPath(filepath.Join(dir, "rootfs")), oci.WithProcessArgs(args...), oci.WithEnv(env), oci.WithUIDGID(uint32(u.Uid), uint32(u.Gid)),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.Netns})}
	if cwd != "" {
		opts = append(opts, oci.WithProcessCwd(cwd))
	}
	if sb.Netns == "" {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	}
	if sec.GetReadOnlyRootFilesystem() {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if sec.GetSeccomp() == runtimev1.Seccomp_SECCOMP_RUNTIME_DEFAULT && !sec.GetPrivileged() {
		opts = append(opts, seccomp.WithDefaultProfile())
	}
	if sec.GetNoNewPrivileges() {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	if m := spec.GetResources().GetMemoryLimitBytes(); m > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(m)))
	}
	var mounts []specs.Mount
	for _, m := range spec.GetMounts() {
		mode := "rw"
		if m.GetReadOnly() {
			mode = "ro"
		}
		mounts = append(mounts, specs.Mount{Destination: m.GetContainerPath(), Source: m.GetHostPath(), Type: "bind", Options: []string{"rbind", mode}})
	}
	if p := spec.GetTerminationMessagePath(); p != "" {
		if err := os.WriteFile(filepath.Join(dir, "termination-log"), nil, 0o666); err != nil {
			return fmt.Errorf("make termination message file of %s: %w", c.ID, err)
		}
		mounts = append(mounts, specs.Mount{Destination: p, Source: filepath.Join(dir, "termination-log"), Type: "bind", Options: []string{"bind", "rw"}})
	}
	s, err := oci.GenerateSpec(namespaces.WithNamespace(ctx, namespace), nil, &containers.Container{ID: c.ID}, append(opts, oci.WithMounts(mounts))...)
	if err != nil {
		return fmt.Errorf("make OCI spec of %s: %w", c.ID, err)
	}
	s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, toUint32(sec.GetSupplementalGroups())...)
	return statefile.Write(filepath.Join(dir, "config.json"), s)
}

func toUint32(ids []int64) []uint32 {
	out := make([]uint32, 0, len(ids))
	for _, id := range ids {
		out = append(out, uint32(id))
	}
	return out
}

// status reads what the attempt in dir is now.
func (r *Runtime) status(dir string) (*runtimev1.ContainerStatus, error) {
	var c container
	if ok, err := statefile.Read(filepath.Join(dir, "container.json"), &c); !ok || err != nil {
		return nil, status.Errorf(codes.NotFound, "no container in %s (%v)", dir, err)
	}
	st, err := keeper.Read(dir)
	cs := &runtimev1.ContainerStatus{Pod: c.Pod, Name: c.Name, Attempt: c.Attempt, Id: c.ID, Image: c.Image, ImageRef: c.ImageRef,
		CreatedAtUnixNano: c.CreatedAt, State: runtimev1.ContainerState_CONTAINER_STATE_CREATED}
	if !st.StartedAt.IsZero() {
		cs.State, cs.StartedAtUnixNano = runtimev1.ContainerState_CONTAINER_STATE_RUNNING, st.StartedAt.UnixNano()
	}
	if st.Exited {
		cs.State, cs.ExitCode, cs.FinishedAtUnixNano = runtimev1.ContainerState_CONTAINER_STATE_EXITED, int32(st.ExitCode), st.FinishedAt.UnixNano()
		cs.Reason = map[bool]string{true: "Completed", false: "Error"}[st.ExitCode == 0]
		if st.ExitCode != 0 && oomKilled(c.ID) {
			cs.Reason = "OOMKilled"
		}
		msg, _ := os.ReadFile(filepath.Join(dir, "termination-log"))
		cs.Message = string(msg[:min(len(msg), 4096)])
	}
	return cs, err
}

// oomKilled says whether the kernel killed a process of the container for
// exceeding its memory limit: its cgroup stays until runc deletes it.
func oomKilled(id string) bool {
	for _, f := range []string{"/sys/fs/cgroup/memory/" + namespace + "/" + id + "/memory.oom_control", "/sys/fs/cgroup/" + namespace + "/" + id + "/memory.events"} {
		data, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(data), "\n") {
			if n, ok := strings.CutPrefix(line, "oom_kill "); ok && n != "0" {
				return true
			}
		}
	}
	return false
}

// containers lists every attempt of every container of the pod in podDir.
func (r *Runtime) containers(podDir string) ([]*runtimev1.ContainerStatus, error) {
	files, _ := filepath.Glob(filepath.Join(podDir, "*", "container.json"))
	var out []*runtimev1.ContainerStatus
	for _, f := range files {
		st, err := r.status(filepath.Dir(f))
		if status.Code(err) == codes.NotFound {
			continue // removed meanwhile
		} else if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// attempts returns the directories of the container's attempts, oldest
// first; NotFound when it has none.
func (r *Runtime) attempts(uid, name string) ([]string, error) {
	ctrs, err := r.containers(r.podDir(uid))
	var dirs []string
	sort.Slice(ctrs, func(i, j int) bool { return ctrs[i].GetAttempt() < ctrs[j].GetAttempt() })
	for _, c := range ctrs {
		if c.GetName() == name {
			dirs = append(dirs, r.ctrDir(uid, name, c.GetAttempt()))
		}
	}
	if len(dirs) == 0 && err == nil {
		err = status.Errorf(codes.NotFound, "pod %s has no container %s", uid, name)
	}
	return dirs, err
}

func (r *Runtime) StopContainer(ctx context.Context, req *runtimev1.StopContainerRequest) (*runtimev1.ContainerStatus, error) {
	dirs, err := r.attempts(req.GetPodUid(), req.GetName())
	if err != nil {
		return nil, err
	}
	dir := dirs[len(dirs)-1]
	st, _ := r.status(dir)
	grace := time.Duration(req.GetGracePeriodSeconds()) * time.Second
	for _, sig := range []string{"TERM", "KILL"} {
		if st.GetState() == runtimev1.ContainerState_CONTAINER_STATE_EXITED {
			break
		}
		_ = r.runc(ctx, "kill", st.GetId(), sig) // fails when it has just exited
		if st, err = r.waitExit(ctx, dir, grace); err != nil {
			return nil, err
		}
		grace = time.Minute
	}
	return st, nil
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
			if err := r.removeContainer(ctx, dir); err != nil {
				return nil, err
			}
		}
	}
	return &runtimev1.RemoveContainerResponse{}, nil
}

// removeContainer kills the attempt in dir if it runs, deletes it from
// runc, and removes its directory.
func (r *Runtime) removeContainer(ctx context.Context, dir string) error {
	var c container
	if ok, err := statefile.Read(filepath.Join(dir, "container.json"), &c); ok && err == nil {
		_ = r.runc(ctx, "delete", "--force", c.ID) // fails when runc never created it
		if st, _ := keeper.Read(dir); st.Started {
			if _, err := r.waitExit(ctx, dir, 10*time.Second); err != nil {
				return err
			}
		}
	}
	_ = unix.Unmount(filepath.Join(dir, "rootfs"), unix.MNT_DETACH)
	return os.RemoveAll(dir)
}
