package containerd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const sigkill = syscall.SIGKILL

// StopContainer stops every running attempt of the container: its stop
// signal (SIGTERM unless the image says otherwise), up to the grace period,
// then SIGKILL. It returns the newest attempt's final status.
func (b *Backend) StopContainer(ctx context.Context, req *runtimev1.StopContainerRequest) (*runtimev1.ContainerStatus, error) {
	s, err := b.sessionFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	st, err := s.stopContainer(s.withNamespace(ctx), req)
	return st, grpcError(err)
}

func (s *session) stopContainer(ctx context.Context, req *runtimev1.StopContainerRequest) (*runtimev1.ContainerStatus, error) {
	if err := validateName("pod_uid", req.GetPodUid()); err != nil {
		return nil, err
	}
	if err := validateName("name", req.GetName()); err != nil {
		return nil, err
	}
	if req.GetGracePeriodSeconds() < 0 {
		return nil, sdk.InvalidArgument("grace_period_seconds", "must not be negative")
	}
	unlock, err := s.locks.lock(ctx, "ctr/"+req.GetPodUid()+"/"+req.GetName())
	if err != nil {
		return nil, err
	}
	defer unlock()

	attempts, err := s.attempts(ctx, req.GetNode(), req.GetPodUid(), req.GetName())
	if err != nil {
		return nil, err
	}
	if len(attempts) == 0 {
		return nil, sdk.ContainerNotFound(req.GetPodUid(), req.GetName())
	}
	grace := time.Duration(req.GetGracePeriodSeconds()) * time.Second
	for _, a := range attempts {
		if err := s.stopTask(ctx, a, grace); err != nil {
			return nil, err
		}
	}
	return s.statusOf(ctx, attempts[len(attempts)-1].ID)
}

// stopTask signals the task to stop, waits up to grace, kills it, and
// records its exit.
func (s *session) stopTask(ctx context.Context, rec containers.Container, grace time.Duration) error {
	c, err := s.client.LoadContainer(ctx, rec.ID)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return statusf(err, "load container %s", rec.ID)
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return statusf(err, "load task of container %s", rec.ID)
	}
	st, err := t.Status(ctx)
	if errdefs.IsNotFound(err) {
		// Reaped meanwhile by the exit watcher, which records the exit
		// before it deletes the task.
		return nil
	}
	if err != nil {
		return statusf(err, "status of container %s", rec.ID)
	}
	if st.Status == client.Stopped {
		_, _, err := s.reap(ctx, rec.ID, st.ExitStatus, st.ExitTime)
		return err
	}
	// Wait before signalling, so that the exit cannot be missed.
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	exitC, err := t.Wait(waitCtx)
	if errdefs.IsNotFound(err) {
		return nil // reaped meanwhile, as above
	}
	if err != nil {
		return statusf(err, "wait for container %s", rec.ID)
	}
	if grace > 0 && st.Status != client.Created {
		sig, err := client.GetStopSignal(ctx, c, syscall.SIGTERM)
		if err != nil {
			sig = syscall.SIGTERM
		}
		if err := t.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
			return statusf(err, "signal container %s", rec.ID)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case es := <-exitC:
			return s.reapExit(ctx, rec.ID, es)
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := t.Kill(ctx, sigkill, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return statusf(err, "kill container %s", rec.ID)
	}
	select {
	case es := <-exitC:
		return s.reapExit(ctx, rec.ID, es)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *session) reapExit(ctx context.Context, id string, es client.ExitStatus) error {
	code, at, err := es.Result()
	if err != nil {
		// The wait broke (containerd restarted); the task says how it ended.
		p, perr := s.taskProcess(ctx, id)
		if perr != nil || p == nil || p.GetStatus() != task.Status_STOPPED {
			return statusf(err, "wait for container %s", id)
		}
		code, at = p.GetExitStatus(), p.GetExitedAt().AsTime()
	}
	_, _, err = s.reap(ctx, id, code, at)
	return err
}

// signal sends sig to the container's task if it has a live one.
func (s *session) signal(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	t, err := s.task(ctx, id)
	if t == nil || err != nil {
		return err
	}
	var opts []client.KillOpts
	if all {
		opts = append(opts, client.WithKillAll)
	}
	if err := t.Kill(ctx, sig, opts...); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsFailedPrecondition(err) && !s.taskEnded(ctx, id) {
		return statusf(err, "signal container %s", id)
	}
	return nil
}

// taskEnded says whether the container's task has stopped or is gone: a
// call on a task being deleted (by the reaper) fails with its shim's
// connection closing, which then is no failure.
func (s *session) taskEnded(ctx context.Context, id string) bool {
	p, err := s.taskProcess(ctx, id)
	return err == nil && (p == nil || p.GetStatus() == task.Status_STOPPED)
}

// exitRecord is how an attempt ended, kept in its labels.
type exitRecord struct {
	code    uint32
	at      time.Time
	reason  string
	message string
}

func (s *session) recordExit(ctx context.Context, id string, e exitRecord) error {
	labels := map[string]string{
		labelExitCode:   strconv.FormatUint(uint64(e.code), 10),
		labelFinishedAt: formatTime(e.at),
		labelReason:     e.reason,
	}
	if e.message != "" {
		labels[labelMessage] = truncateLabel(e.message)
	}
	return s.setLabels(ctx, id, labels)
}

// reap records a stopped task's exit on its container, then deletes the
// task (freeing its shim). It returns the container's status, and whether
// this call was the one that recorded the exit. Containers that are not the
// plugin's are left alone (nil status).
func (s *session) reap(ctx context.Context, id string, code uint32, at time.Time) (*runtimev1.ContainerStatus, bool, error) {
	unlock, err := s.locks.lock(ctx, "reap/"+id)
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	rec, err := s.client.ContainerService().Get(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, statusf(err, "load container %s", id)
	}
	if rec.Labels[LabelKind] != KindContainer {
		return nil, false, nil
	}
	recorded := false
	if _, done := rec.Labels[labelExitCode]; !done {
		reason := exitReason(code, rec.Labels[labelOOMKilled] == "true")
		if err := s.recordExit(ctx, id, exitRecord{code: code, at: at, reason: reason, message: s.terminationMessage(rec)}); err != nil {
			if errdefs.IsNotFound(err) {
				return nil, false, nil
			}
			return nil, false, err
		}
		recorded = true
	}
	if err := s.deleteTaskLocked(ctx, id, false); err != nil {
		return nil, recorded, err
	}
	st, err := s.statusOf(ctx, id)
	if isNotFound(err) {
		return nil, recorded, nil
	}
	return st, recorded, err
}

// RemoveContainer removes every exited attempt of the container older than
// keep_attempt, with its snapshot and log. Running attempts are left.
func (b *Backend) RemoveContainer(ctx context.Context, req *runtimev1.RemoveContainerRequest) (*runtimev1.RemoveContainerResponse, error) {
	s, err := b.sessionFor(req.GetNode())
	if err != nil {
		return nil, err
	}
	if err := s.removeContainer(s.withNamespace(ctx), req); err != nil {
		return nil, grpcError(err)
	}
	return &runtimev1.RemoveContainerResponse{}, nil
}

func (s *session) removeContainer(ctx context.Context, req *runtimev1.RemoveContainerRequest) error {
	uid, name, keep := req.GetPodUid(), req.GetName(), req.GetKeepAttempt()
	if err := validateName("pod_uid", uid); err != nil {
		return err
	}
	if err := validateName("name", name); err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, "pod/"+uid)
	if err != nil {
		return err
	}
	defer unlock()

	attempts, err := s.attempts(ctx, req.GetNode(), uid, name)
	if err != nil {
		return err
	}
	for _, a := range attempts {
		if labelAttempt(a.Labels) >= keep {
			continue
		}
		p, err := s.taskProcess(ctx, a.ID)
		if err != nil {
			return err
		}
		if p != nil && p.GetStatus() != task.Status_STOPPED {
			s.logger.Warn("not removing a running attempt", "container", name, "pod", uid, "attempt", labelAttempt(a.Labels))
			continue
		}
		if err := s.deleteContainer(ctx, a.ID); err != nil {
			return err
		}
		s.removeTerminationFile(uid, a.ID)
	}
	// Logs of attempts whose containers are gone already go too.
	entries, err := os.ReadDir(s.logDir(uid, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return status.Errorf(codes.Internal, "list logs of container %s: %v", name, err)
	}
	for _, e := range entries {
		n, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), ".log"), 10, 32)
		if err != nil || !strings.HasSuffix(e.Name(), ".log") || uint32(n) >= keep {
			continue
		}
		if err := os.Remove(filepath.Join(s.logDir(uid, name), e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return status.Errorf(codes.Internal, "remove log of container %s: %v", name, err)
		}
	}
	return nil
}

// attempts lists the containerd records of every attempt of a container,
// oldest first.
func (s *session) attempts(ctx context.Context, node, podUID, name string) ([]containers.Container, error) {
	recs, err := s.client.ContainerService().List(ctx, labelFilter(LabelPodUID, podUID, LabelContainer, name, LabelNode, node, LabelKind, KindContainer))
	if err != nil {
		return nil, statusf(err, "list attempts of container %s of pod %s", name, podUID)
	}
	sort.Slice(recs, func(i, j int) bool { return labelAttempt(recs[i].Labels) < labelAttempt(recs[j].Labels) })
	return recs, nil
}
