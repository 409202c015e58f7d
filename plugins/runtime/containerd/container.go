package containerd

import (
	"context"
	"maps"
	"strconv"
	"time"

	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// StartContainer creates and starts one attempt of a container. It is
// idempotent: an attempt that exists is not started again, but an attempt
// whose start was cut short (by a crash between creating and starting it)
// is finished. A container with stdin gets a stdio keeper (stdio.go) that
// holds its stdin for Attach.
func (b *Backend) StartContainer(ctx context.Context, req *runtimev1.StartContainerRequest) (*runtimev1.ContainerStatus, error) {
	s, err := b.sessionFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	st, err := s.startContainer(s.withNamespace(ctx), req)
	return st, grpcError(err)
}

func (s *session) startContainer(ctx context.Context, req *runtimev1.StartContainerRequest) (*runtimev1.ContainerStatus, error) {
	pod, spec := req.GetPod(), req.GetContainer()
	if err := validateName("pod.uid", pod.GetUid()); err != nil {
		return nil, err
	}
	if err := validateName("container.name", spec.GetName()); err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, "pod/"+pod.GetUid())
	if err != nil {
		return nil, err
	}
	defer unlock()

	sb, err := s.client.ContainerService().Get(ctx, sandboxID(pod.GetUid()))
	if errdefs.IsNotFound(err) {
		return nil, noSandbox(pod.GetUid())
	}
	if err != nil {
		return nil, statusf(err, "look up sandbox of pod %s", pod.GetUid())
	}
	if n := sb.Labels[LabelNode]; n != req.GetNode() {
		return nil, status.Errorf(codes.FailedPrecondition, "pod %s has its sandbox on node %q, not %q", pod.GetUid(), n, req.GetNode())
	}

	id := containerID(pod.GetUid(), spec.GetName(), req.GetAttempt())
	c, err := s.client.LoadContainer(ctx, id)
	created := false
	if errdefs.IsNotFound(err) {
		c, err = s.createContainer(ctx, req, sb, id)
		created = true
	}
	if err != nil {
		return nil, statusf(err, "create container %s of pod %s", spec.GetName(), pod.GetUid())
	}
	return s.ensureStarted(ctx, c, created)
}

// ensureStarted brings an attempt that was never started to running, and
// only reports the others. created says the attempt was just recorded by
// this call, under the pod's lock: it has no task yet.
func (s *session) ensureStarted(ctx context.Context, c client.Container, created bool) (*runtimev1.ContainerStatus, error) {
	rec, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return nil, statusf(err, "read container %s", c.ID())
	}
	id := rec.ID
	if _, exited := rec.Labels[labelExitCode]; exited {
		return containerStatus(rec, nil), nil
	}
	var p *task.Process
	if !created {
		if p, err = s.taskProcess(ctx, id); err != nil {
			return nil, err
		}
		if p == nil && rec.Labels[labelStartedAt] != "" {
			// It ran, and its task is gone: a new attempt is the agent's call.
			return containerStatus(rec, nil), nil
		}
	}
	var t client.Task
	if p == nil {
		if t, err = s.newTask(ctx, c, rec); err != nil {
			return s.startFailed(ctx, rec, "create task", err)
		}
		p = &task.Process{Status: task.Status_CREATED}
	}
	if p.GetStatus() != task.Status_CREATED {
		return s.statusOf(ctx, id)
	}
	if t == nil {
		if t, err = c.Task(ctx, nil); err != nil {
			return nil, statusf(err, "load task of container %s", id)
		}
	}
	// Taken before the start, so that it cannot be after the exit; recorded
	// while the task starts rather than after, and taken back (an empty
	// label is removed) if the start fails.
	startedAt := formatTime(time.Now())
	recorded := make(chan error, 1)
	go func() { recorded <- s.setLabels(ctx, id, map[string]string{labelStartedAt: startedAt}) }()
	startErr := t.Start(ctx)
	if err := <-recorded; err != nil {
		s.logger.Warn("record start time", "container", id, "err", err)
	} else if startErr != nil {
		if err := s.setLabels(ctx, id, map[string]string{labelStartedAt: ""}); err != nil {
			return nil, err
		}
	}
	if startErr != nil {
		return s.startFailed(ctx, rec, "start task", startErr)
	}
	rec.Labels = maps.Clone(rec.Labels)
	rec.Labels[labelStartedAt] = startedAt
	s.logger.Info("container started", "node", rec.Labels[LabelNode], "pod", rec.Labels[LabelPodNamespace]+"/"+rec.Labels[LabelPodName],
		"container", rec.Labels[LabelContainer], "attempt", rec.Labels[LabelAttempt], "id", id)
	// Reported as running without asking again: an exit since is
	// announced by WatchContainers, and it supersedes this.
	return containerStatus(rec, &task.Process{Status: task.Status_RUNNING}), nil
}

// startFailed records a start that runc refused (bad command, working
// directory, ...) as an exit with reason StartError, so that the attempt
// reads as failed from then on. Failures to reach containerd are returned
// instead, for the agent to retry.
func (s *session) startFailed(ctx context.Context, rec containers.Container, what string, cause error) (*runtimev1.ContainerStatus, error) {
	if isTransient(cause) {
		return nil, statusf(cause, "%s of container %s", what, rec.ID)
	}
	if err := s.deleteTask(ctx, rec.ID, true); err != nil {
		return nil, err
	}
	if err := s.recordExit(ctx, rec.ID, exitRecord{
		code:    128,
		at:      time.Now(),
		reason:  ReasonStartError,
		message: what + ": " + cause.Error(),
	}); err != nil {
		return nil, err
	}
	s.logger.Warn("container failed to start", "container", rec.Labels[LabelContainer], "id", rec.ID, "err", cause)
	return s.statusOf(ctx, rec.ID)
}

// newTask creates the attempt's task with its I/O: through a stdio keeper
// for a container with stdin, else through the shim's log driver.
func (s *session) newTask(ctx context.Context, c client.Container, rec containers.Container) (client.Task, error) {
	if rec.Labels[labelStdin] == "" {
		return c.NewTask(ctx, s.taskIO(rec))
	}
	creator, stopKeeper, err := s.stdinIO(ctx, rec)
	if err != nil {
		return nil, err
	}
	t, err := c.NewTask(ctx, creator)
	if err != nil {
		stopKeeper()
	}
	return t, err
}

// taskIO sends the task's output to the log driver (this executable,
// started by the shim) so that logs are written while the plugin is down.
func (s *session) taskIO(rec containers.Container) cio.Creator {
	l := rec.Labels
	args := map[string]string{LogDriverArg: s.logPath(l[LabelPodUID], l[LabelContainer], labelAttempt(l))}
	if l[labelTTY] == "true" {
		return cio.TerminalBinaryIO(s.logDriver, args)
	}
	return cio.BinaryIO(s.logDriver, args)
}

// createContainer records the attempt in containerd with its snapshot and
// spec.
func (s *session) createContainer(ctx context.Context, req *runtimev1.StartContainerRequest, sb containers.Container, id string) (client.Container, error) {
	spec := req.GetContainer()
	if err := s.checkAllowed(spec); err != nil {
		return nil, err
	}
	img, err := s.localImage(ctx, spec.GetImage())
	if err != nil {
		return nil, err
	}
	mounts, err := s.restoreSandbox(sb.Labels)
	if err != nil {
		return nil, err
	}
	if mounts, err = s.withTerminationMount(mounts, req.GetPod().GetUid(), id, spec.GetTerminationMessagePath()); err != nil {
		return nil, err
	}
	if mounts, err = withVolumeMounts(mounts, spec.GetMounts()); err != nil {
		return nil, err
	}
	imageRef, err := digestRef(img)
	if err != nil {
		return nil, err
	}

	labels := podLabels(req.GetNode(), req.GetPod(), KindContainer)
	labels[LabelContainer] = spec.GetName()
	labels[LabelAttempt] = strconv.FormatUint(uint64(req.GetAttempt()), 10)
	labels[labelImage] = spec.GetImage()
	labels[labelImageRef] = imageRef
	if spec.GetTty() {
		labels[labelTTY] = "true"
	}
	switch {
	case spec.GetStdinOnce() && spec.GetStdin():
		labels[labelStdin] = "once"
	case spec.GetStdin():
		labels[labelStdin] = "true"
	}
	snapshotLabels := map[string]string{
		LabelNode: req.GetNode(), LabelPodUID: req.GetPod().GetUid(), LabelKind: KindContainer,
		LabelContainer: spec.GetName(), LabelAttempt: labels[LabelAttempt],
	}
	opts := []client.NewContainerOpts{
		client.WithContainerLabels(labels),
		client.WithImageStopSignal(img, "SIGTERM"),
		client.WithImageName(img.Name()),
		client.WithSnapshotter(s.cfg.Snapshotter),
		client.WithNewSnapshot(id, img, snapshots.WithLabels(snapshotLabels)),
		client.WithNewSpec(specOpts(img, spec, sb, mounts)...),
	}
	c, err := s.client.NewContainer(ctx, id, opts...)
	if status.Code(err) == codes.PermissionDenied {
		// The spec refused what the container asks for (runAsNonRoot):
		// the snapshot made for it is of no use.
		if rmErr := s.client.SnapshotService(s.cfg.Snapshotter).Remove(ctx, id); rmErr != nil && !errdefs.IsNotFound(rmErr) {
			s.logger.Warn("remove snapshot of a refused container", "container", spec.GetName(), "id", id, "err", rmErr)
		}
		return nil, err
	}
	if errdefs.IsAlreadyExists(err) || errdefs.IsNotFound(err) {
		// Rare, and checked only now to spare every start the calls: a
		// snapshot left by a crash between making it and recording its
		// container, or image layers no longer unpacked (PullImage unpacked
		// them, but they may have been removed since).
		if err := s.client.SnapshotService(s.cfg.Snapshotter).Remove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			return nil, statusf(err, "remove stale snapshot %s", id)
		}
		if err := s.ensureUnpacked(ctx, img); err != nil {
			return nil, err
		}
		c, err = s.client.NewContainer(ctx, id, opts...)
	}
	return c, err
}

// specOpts builds the OCI spec with the kubelet's semantics: command
// replaces the image's ENTRYPOINT, args its CMD, env adds to its env.
func specOpts(img client.Image, spec *runtimev1.ContainerSpec, sb containers.Container, mounts []specs.Mount) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if len(spec.GetCommand()) > 0 {
		opts = append(opts, oci.WithImageConfig(img), oci.WithProcessArgs(append(append([]string{}, spec.GetCommand()...), spec.GetArgs()...)...))
	} else {
		opts = append(opts, oci.WithImageConfigArgs(img, spec.GetArgs()))
	}
	hostname := sb.Labels[labelHostname]
	if sb.Labels[labelHostNetwork] == "true" {
		opts = append(opts,
			oci.WithHostNamespace(specs.NetworkNamespace),
			oci.WithHostNamespace(specs.UTSNamespace),
		)
		hostname = ""
	} else {
		opts = append(opts,
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.Labels[labelNetns]}),
			oci.WithHostname(hostname),
		)
	}
	env := make([]string, 0, len(spec.GetEnv())+1)
	if hostname != "" {
		env = append(env, "HOSTNAME="+hostname)
	}
	for _, kv := range spec.GetEnv() {
		env = append(env, kv.GetKey()+"="+kv.GetValue())
	}
	opts = append(opts, oci.WithEnv(env), oci.WithMounts(mounts))
	if spec.GetWorkingDir() != "" {
		opts = append(opts, oci.WithProcessCwd(spec.GetWorkingDir()))
	}
	if spec.GetTty() {
		opts = append(opts, oci.WithTTY)
	}
	opts = append(opts, oci.WithMounts([]specs.Mount{cgroupMount}))
	opts = append(opts, resourceOpts(spec.GetResources())...)
	opts = append(opts, securityOpts(spec.GetSecurity())...)
	return append(opts, withoutNegativeOOMScoreAdj)
}

// withoutNegativeOOMScoreAdj drops a negative oom_score_adj: without
// CAP_SYS_RESOURCE runc cannot set one and the container fails to start.
func withoutNegativeOOMScoreAdj(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Process != nil && s.Process.OOMScoreAdj != nil && *s.Process.OOMScoreAdj < 0 {
		s.Process.OOMScoreAdj = nil
	}
	return nil
}

// setLabels merges labels into a container's, leaving the others alone.
func (s *session) setLabels(ctx context.Context, id string, labels map[string]string) error {
	paths := make([]string, 0, len(labels))
	for k := range labels {
		paths = append(paths, "labels."+k)
	}
	if _, err := s.client.ContainerService().Update(ctx, containers.Container{ID: id, Labels: labels}, paths...); err != nil {
		return statusf(err, "label container %s", id)
	}
	return nil
}
