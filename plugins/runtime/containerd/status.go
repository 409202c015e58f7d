package containerd

import (
	"context"
	"strconv"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/containers"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Reasons of an exited container, as the kubelet gives them.
const (
	ReasonCompleted  = "Completed"
	ReasonError      = "Error"
	ReasonOOMKilled  = "OOMKilled"
	ReasonStartError = "StartError"
	// ReasonUnknown: the task vanished without its exit being recorded, as
	// when the host restarted.
	ReasonUnknown = "Unknown"
)

// exitReason gives the reason of an exit with code.
func exitReason(code uint32, oomKilled bool) string {
	switch {
	case oomKilled:
		return ReasonOOMKilled
	case code == 0:
		return ReasonCompleted
	default:
		return ReasonError
	}
}

// containerStatus builds a container's status from its record and its
// task's init process (nil when it has no task). Once the task is deleted
// the exit recorded in the labels stands in for it.
func containerStatus(c containers.Container, p *task.Process) *runtimev1.ContainerStatus {
	l := c.Labels
	st := &runtimev1.ContainerStatus{
		Pod:               podRefFromLabels(l),
		Name:              l[LabelContainer],
		Attempt:           labelAttempt(l),
		Id:                c.ID,
		Image:             l[labelImage],
		ImageRef:          l[labelImageRef],
		CreatedAtUnixNano: c.CreatedAt.UnixNano(),
		StartedAtUnixNano: labelTime(l, labelStartedAt),
	}
	if p != nil {
		switch p.GetStatus() {
		case task.Status_CREATED:
			st.State = runtimev1.ContainerState_CONTAINER_STATE_CREATED
		case task.Status_STOPPED:
			st.State = runtimev1.ContainerState_CONTAINER_STATE_EXITED
			st.ExitCode = int32(p.GetExitStatus())
			st.FinishedAtUnixNano = p.GetExitedAt().AsTime().UnixNano()
			st.Reason = exitReason(p.GetExitStatus(), l[labelOOMKilled] == "true")
		case task.Status_UNKNOWN:
			st.State = runtimev1.ContainerState_CONTAINER_STATE_RUNNING
			st.Message = "containerd cannot tell the task's state (its shim does not answer)"
		default: // running, paused, pausing
			st.State = runtimev1.ContainerState_CONTAINER_STATE_RUNNING
		}
		if st.State != runtimev1.ContainerState_CONTAINER_STATE_CREATED && st.StartedAtUnixNano == 0 {
			// Started, but the plugin stopped before recording when.
			st.StartedAtUnixNano = c.UpdatedAt.UnixNano()
		}
		return st
	}
	if code, ok := l[labelExitCode]; ok {
		n, _ := strconv.ParseInt(code, 10, 32)
		st.State = runtimev1.ContainerState_CONTAINER_STATE_EXITED
		st.ExitCode = int32(n)
		st.FinishedAtUnixNano = labelTime(l, labelFinishedAt)
		st.Reason = l[labelReason]
		st.Message = l[labelMessage]
		return st
	}
	if st.StartedAtUnixNano != 0 {
		st.State = runtimev1.ContainerState_CONTAINER_STATE_EXITED
		st.ExitCode = 255
		st.FinishedAtUnixNano = c.UpdatedAt.UnixNano()
		st.Reason = ReasonUnknown
		st.Message = "the container's task is gone without a recorded exit (containerd or the host restarted)"
		return st
	}
	st.State = runtimev1.ContainerState_CONTAINER_STATE_CREATED
	return st
}

// statusOf reads one container's status from containerd.
func (s *session) statusOf(ctx context.Context, id string) (*runtimev1.ContainerStatus, error) {
	c, err := s.client.ContainerService().Get(ctx, id)
	if err != nil {
		return nil, statusf(err, "load container %s", id)
	}
	p, err := s.taskProcess(ctx, id)
	if err != nil {
		return nil, err
	}
	return containerStatus(c, p), nil
}

// taskProcess returns the init process of a container's task, nil if it has
// none.
func (s *session) taskProcess(ctx context.Context, id string) (*task.Process, error) {
	resp, err := s.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id})
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, statusf(err, "get task of container %s", id)
	}
	return resp.GetProcess(), nil
}
