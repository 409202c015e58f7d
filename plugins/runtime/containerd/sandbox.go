package containerd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A sandbox is a containerd container record with no task: its labels hold
// the pod's identity, its network namespace and its hostname.

// RunSandbox creates the pod's network namespace (unless it uses the host's)
// and records the sandbox in containerd. An existing sandbox is returned,
// with its namespace made again if a host reboot took it.
func (b *Backend) RunSandbox(ctx context.Context, req *runtimev1.RunSandboxRequest) (*runtimev1.Sandbox, error) {
	s, err := b.sessionFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	sb, err := s.runSandbox(s.withNamespace(ctx), req)
	return sb, grpcError(err)
}

func (s *session) runSandbox(ctx context.Context, req *runtimev1.RunSandboxRequest) (*runtimev1.Sandbox, error) {
	pod := req.GetPod()
	if err := validateName("pod.uid", pod.GetUid()); err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, "pod/"+pod.GetUid())
	if err != nil {
		return nil, err
	}
	defer unlock()

	hostname := req.GetHostname()
	if hostname == "" {
		hostname = pod.GetName()
	}
	if len(hostname) > 63 {
		hostname = hostname[:63]
	}
	labels := podLabels(req.GetNode(), pod, KindSandbox)
	if !req.GetHostNetwork() {
		labels[labelNetns] = filepath.Join(netnsDir, netnsName(pod.GetUid()))
	}
	labels[labelHostNetwork] = strconv.FormatBool(req.GetHostNetwork())
	labels[labelHostname] = hostname
	if dns := req.GetDns(); dns != nil {
		labels[labelResolvConf] = resolvConf(dns)
	}

	// The network namespace and the pod's files are made while the record
	// is written: neither needs the other. A record written without them
	// is completed by the next call, as after a reboot.
	prepared := make(chan error, 1)
	go func() {
		_, err := s.preparePod(labels)
		prepared <- err
	}()
	c, err := s.client.NewContainer(ctx, sandboxID(pod.GetUid()),
		client.WithContainerLabels(labels),
		client.WithSpec(&oci.Spec{Version: specs.Version, Hostname: hostname}),
	)
	prepErr := <-prepared
	switch {
	case errdefs.IsAlreadyExists(err):
		return s.existingSandbox(ctx, req.GetNode(), pod.GetUid())
	case err != nil:
		return nil, statusf(err, "record sandbox of pod %s", pod.GetUid())
	case prepErr != nil:
		return nil, prepErr
	}
	rec, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return nil, statusf(err, "read sandbox of pod %s", pod.GetUid())
	}
	s.logger.Info("sandbox created", "node", req.GetNode(), "pod", pod.GetNamespace()+"/"+pod.GetName(), "uid", pod.GetUid(), "netns", labels[labelNetns])
	return sandboxFromRecord(rec), nil
}

// existingSandbox returns a sandbox made by an earlier call, with what a
// reboot takes made again.
func (s *session) existingSandbox(ctx context.Context, node, podUID string) (*runtimev1.Sandbox, error) {
	existing, err := s.client.ContainerService().Get(ctx, sandboxID(podUID))
	if err != nil {
		return nil, statusf(err, "look up sandbox of pod %s", podUID)
	}
	if n := existing.Labels[LabelNode]; n != node {
		return nil, status.Errorf(codes.FailedPrecondition, "pod %s already has a sandbox on node %q", podUID, n)
	}
	if _, err := s.restoreSandbox(existing.Labels); err != nil {
		return nil, err
	}
	return sandboxFromRecord(existing), nil
}

// restoreSandbox makes again what lives on tmpfs and a reboot erases, and
// returns the mounts of the pod's files.
func (s *session) restoreSandbox(l map[string]string) ([]specs.Mount, error) {
	return s.preparePod(l)
}

// preparePod makes the network namespace (unless the pod uses the host's)
// and files of the pod whose sandbox labels are l, if they are missing, and
// returns the mounts of the files.
func (s *session) preparePod(l map[string]string) ([]specs.Mount, error) {
	podUID, hostNetwork := l[LabelPodUID], l[labelHostNetwork] == "true"
	if !hostNetwork {
		if _, err := ensureNetns(netnsName(podUID)); err != nil {
			return nil, status.Errorf(codes.Internal, "sandbox of pod %s: %v", podUID, err)
		}
	}
	mounts, err := s.ensurePodFiles(podUID, hostNetwork, l[labelResolvConf])
	if err != nil {
		return nil, status.Errorf(codes.Internal, "sandbox of pod %s: %v", podUID, err)
	}
	return mounts, nil
}

func sandboxFromRecord(c containers.Container) *runtimev1.Sandbox {
	return &runtimev1.Sandbox{
		Pod:               podRefFromLabels(c.Labels),
		Id:                c.ID,
		NetnsPath:         c.Labels[labelNetns],
		HostNetwork:       c.Labels[labelHostNetwork] == "true",
		CreatedAtUnixNano: c.CreatedAt.UnixNano(),
	}
}

// RemoveSandbox kills every container of the pod at once, then removes
// their tasks, containers and snapshots, the network namespace, the logs
// and the sandbox record, which goes last so that a removal cut short is
// found and finished by the next call.
func (b *Backend) RemoveSandbox(ctx context.Context, req *runtimev1.RemoveSandboxRequest) (*runtimev1.RemoveSandboxResponse, error) {
	s, err := b.sessionFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	if err := s.removeSandbox(s.withNamespace(ctx), req.GetNode(), req.GetPodUid()); err != nil {
		return nil, grpcError(err)
	}
	return &runtimev1.RemoveSandboxResponse{}, nil
}

func (s *session) removeSandbox(ctx context.Context, node, podUID string) error {
	if err := validateName("pod_uid", podUID); err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, "pod/"+podUID)
	if err != nil {
		return err
	}
	defer unlock()

	recs, err := s.client.ContainerService().List(ctx, labelFilter(LabelPodUID, podUID, LabelNode, node))
	if err != nil {
		return statusf(err, "list containers of pod %s", podUID)
	}
	var ctrs []containers.Container
	var sandbox *containers.Container
	for i := range recs {
		if recs[i].Labels[LabelKind] == KindSandbox {
			sandbox = &recs[i]
		} else {
			ctrs = append(ctrs, recs[i])
		}
	}
	// SIGKILL them all first so that they die together, not one by one.
	for _, c := range ctrs {
		if err := s.signal(ctx, c.ID, sigkill, true); err != nil {
			return err
		}
	}
	for _, c := range ctrs {
		if err := s.deleteContainer(ctx, c.ID); err != nil {
			return err
		}
	}
	if err := s.removeSnapshots(ctx, podUID); err != nil {
		return err
	}
	if err := removeNetns(netnsName(podUID)); errors.Is(err, errNetnsPinned) {
		// Nothing runs in it any more; failing would only stall the agent.
		s.logger.Warn("network namespace left behind", "uid", podUID, "err", err)
	} else if err != nil {
		return status.Errorf(codes.Internal, "remove sandbox of pod %s: %v", podUID, err)
	}
	for _, dir := range []string{s.podDir(podUID), s.logDir(podUID, "")} {
		if err := os.RemoveAll(dir); err != nil {
			return status.Errorf(codes.Internal, "remove sandbox of pod %s: %v", podUID, err)
		}
	}
	if sandbox != nil {
		if err := s.client.ContainerService().Delete(ctx, sandbox.ID); err != nil && !errdefs.IsNotFound(err) {
			return statusf(err, "delete sandbox record of pod %s", podUID)
		}
		s.logger.Info("sandbox removed", "node", node, "pod", sandbox.Labels[LabelPodNamespace]+"/"+sandbox.Labels[LabelPodName], "uid", podUID, "containers", len(ctrs))
	}
	return nil
}

// deleteContainer kills and deletes the container's task, then the
// container and its snapshot. Missing pieces are skipped.
func (s *session) deleteContainer(ctx context.Context, id string) error {
	if err := s.deleteTask(ctx, id, true); err != nil {
		return err
	}
	c, err := s.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return statusf(err, "load container %s", id)
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return statusf(err, "delete container %s", id)
	}
	return nil
}

// deleteTask deletes the container's task. A running task is killed first
// if kill is set, and is an error otherwise. It waits for a reaping of the
// same task to finish rather than race it.
func (s *session) deleteTask(ctx context.Context, id string, kill bool) error {
	unlock, err := s.locks.lock(ctx, "reap/"+id)
	if err != nil {
		return err
	}
	defer unlock()
	return s.deleteTaskLocked(ctx, id, kill)
}

// deleteTaskLocked is deleteTask for a caller holding the reap lock.
func (s *session) deleteTaskLocked(ctx context.Context, id string, kill bool) error {
	t, err := s.task(ctx, id)
	if t == nil || err != nil {
		return err
	}
	var opts []client.ProcessDeleteOpts
	if kill {
		opts = append(opts, client.WithProcessKill)
	}
	if _, err := t.Delete(ctx, opts...); err != nil && !errdefs.IsNotFound(err) {
		// The shim goes away with its task: a delete that raced another
		// one sees its connection close. What counts is that it is gone.
		if p, perr := s.taskProcess(ctx, id); perr == nil && p == nil {
			return nil
		}
		return statusf(err, "delete task of container %s", id)
	}
	return nil
}

// removeSnapshots removes snapshots of the pod that no container holds any
// more (left by a crash between preparing a snapshot and recording its
// container).
func (s *session) removeSnapshots(ctx context.Context, podUID string) error {
	sn := s.client.SnapshotService(s.cfg.Snapshotter)
	var keys []string
	err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		keys = append(keys, info.Name)
		return nil
	}, labelFilter(LabelPodUID, podUID))
	if err != nil {
		return statusf(err, "list snapshots of pod %s", podUID)
	}
	for _, k := range keys {
		if err := sn.Remove(ctx, k); err != nil && !errdefs.IsNotFound(err) {
			return statusf(err, "remove snapshot %s of pod %s", k, podUID)
		}
	}
	return nil
}

// ListSandboxes rebuilds every sandbox of the node, with every attempt of
// every container, from containerd alone.
func (b *Backend) ListSandboxes(ctx context.Context, req *runtimev1.ListSandboxesRequest) (*runtimev1.ListSandboxesResponse, error) {
	s, err := b.sessionFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	list, err := s.listSandboxes(s.withNamespace(ctx), req.GetNode())
	if err != nil {
		return nil, grpcError(err)
	}
	return &runtimev1.ListSandboxesResponse{Sandboxes: list}, nil
}

func (s *session) listSandboxes(ctx context.Context, node string) ([]*runtimev1.SandboxStatus, error) {
	recs, err := s.client.ContainerService().List(ctx, labelFilter(LabelNode, node))
	if err != nil {
		return nil, statusf(err, "list containers of node %s", node)
	}
	procs, err := s.taskProcesses(ctx)
	if err != nil {
		return nil, err
	}
	byPod := map[string]*runtimev1.SandboxStatus{}
	get := func(uid string) *runtimev1.SandboxStatus {
		if byPod[uid] == nil {
			byPod[uid] = &runtimev1.SandboxStatus{}
		}
		return byPod[uid]
	}
	for _, c := range recs {
		uid := c.Labels[LabelPodUID]
		if uid == "" {
			continue
		}
		switch c.Labels[LabelKind] {
		case KindSandbox:
			get(uid).Sandbox = sandboxFromRecord(c)
		case KindContainer:
			ss := get(uid)
			ss.Containers = append(ss.Containers, containerStatus(c, procs[c.ID]))
		}
	}
	out := make([]*runtimev1.SandboxStatus, 0, len(byPod))
	for uid, ss := range byPod {
		if ss.Sandbox == nil {
			// Containers whose sandbox record is gone still belong to the
			// pod; list them so that the agent removes them.
			first := ss.Containers[0]
			ss.Sandbox = &runtimev1.Sandbox{Pod: first.GetPod(), Id: sandboxID(uid)}
		}
		sort.Slice(ss.Containers, func(i, j int) bool {
			a, b := ss.Containers[i], ss.Containers[j]
			if a.GetName() != b.GetName() {
				return a.GetName() < b.GetName()
			}
			return a.GetAttempt() < b.GetAttempt()
		})
		out = append(out, ss)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].GetSandbox(), out[j].GetSandbox()
		if a.GetCreatedAtUnixNano() != b.GetCreatedAtUnixNano() {
			return a.GetCreatedAtUnixNano() < b.GetCreatedAtUnixNano()
		}
		return a.GetPod().GetUid() < b.GetPod().GetUid()
	})
	return out, nil
}

// taskProcesses returns the init process of every task in the namespace,
// by container ID, in one call.
func (s *session) taskProcesses(ctx context.Context) (map[string]*task.Process, error) {
	resp, err := s.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, statusf(err, "list tasks")
	}
	out := make(map[string]*task.Process, len(resp.GetTasks()))
	for _, p := range resp.GetTasks() {
		out[p.GetID()] = p
	}
	return out, nil
}

func noSandbox(podUID string) error {
	return status.Errorf(codes.FailedPrecondition, "pod %s has no sandbox: call RunSandbox first", podUID)
}

// task returns the container's task, or nil when the container or its task
// does not exist.
func (s *session) task(ctx context.Context, id string) (client.Task, error) {
	c, err := s.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, statusf(err, "load container %s", id)
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, statusf(err, "load task of container %s", id)
	}
	return t, nil
}
