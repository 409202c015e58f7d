package containerd

import (
	"context"
	"errors"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

const (
	// reconcileInterval bounds how long an exit missed by the event stream
	// (it is not subscribed at once) goes unrecorded.
	reconcileInterval = 30 * time.Second
	// eventTimeout bounds the containerd calls made for one event.
	eventTimeout = 30 * time.Second
	maxBackoff   = 10 * time.Second
)

// followEvents follows containerd's task events until ctx ends: exits are
// recorded on their containers and their tasks deleted, and watchers are
// told of starts and exits. When the stream breaks, watchers are ended
// (they may have missed events) and the stream is taken up again.
func (s *session) followEvents(ctx context.Context) {
	backoff := 500 * time.Millisecond
	failures := 0
	for {
		began := time.Now()
		err := s.followOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			backoff, failures = 500*time.Millisecond, 0
		}
		failures++
		if failures == 1 {
			s.logger.Warn("containerd event stream lost; retrying", "err", err)
		} else {
			s.logger.Debug("containerd event stream still unavailable", "err", err)
		}
		s.watch.closeAll(status.Errorf(codes.Unavailable, "lost containerd's event stream (%v): list again and watch anew", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (s *session) followOnce(ctx context.Context) error {
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	envs, errs := s.client.Subscribe(subCtx, fmt.Sprintf(`namespace==%q,topic~="^/tasks/"`, s.cfg.Namespace))
	// Exits that happened while nobody listened (the plugin was down).
	s.reconcile(ctx)
	ticker := time.NewTicker(reconcileInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			if err == nil {
				err = errors.New("event stream closed")
			}
			return err
		case env := <-envs:
			s.handleEvent(ctx, env)
		case <-ticker.C:
			s.reconcile(ctx)
		}
	}
}

func (s *session) handleEvent(ctx context.Context, env *events.Envelope) {
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		s.logger.Debug("undecodable containerd event", "topic", env.Topic, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, eventTimeout)
	defer cancel()
	switch e := v.(type) {
	case *apievents.TaskStart:
		s.onStart(ctx, e.GetContainerID(), env.Timestamp)
	case *apievents.TaskExit:
		if e.GetID() != "" && e.GetID() != e.GetContainerID() {
			return // an exec'd process, not the container
		}
		s.onExit(ctx, e.GetContainerID(), e.GetExitStatus(), e.GetExitedAt().AsTime())
	case *apievents.TaskOOM:
		s.onOOM(ctx, e.GetContainerID())
	}
}

// ours loads a container and says whether it is one of this session's
// containers (not a sandbox, not another node's, not someone else's).
func (s *session) ours(ctx context.Context, id string) (containers.Container, bool) {
	rec, err := s.client.ContainerService().Get(ctx, id)
	if err != nil {
		return containers.Container{}, false
	}
	return rec, rec.Labels[LabelKind] == KindContainer && s.serves(rec.Labels[LabelNode])
}

func (s *session) onStart(ctx context.Context, id string, at time.Time) {
	if !s.watch.watching() {
		return
	}
	rec, ok := s.ours(ctx, id)
	if !ok {
		return
	}
	p, err := s.taskProcess(ctx, id)
	if err != nil {
		s.logger.Warn("status of started container", "container", id, "err", err)
		return
	}
	st := containerStatus(rec, p)
	if st.GetState() == runtimev1.ContainerState_CONTAINER_STATE_EXITED {
		// Already gone: its exit event tells it whole, with what the exit
		// record adds (termination message, OOM); this one would not.
		return
	}
	if rec.Labels[labelStartedAt] == "" {
		st.StartedAtUnixNano = at.UnixNano()
	}
	s.watch.publish(rec.Labels[LabelNode], st)
}

func (s *session) onExit(ctx context.Context, id string, code uint32, at time.Time) {
	rec, ok := s.ours(ctx, id)
	if !ok {
		return
	}
	st, recorded, err := s.reap(ctx, id, code, at)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("record container exit", "container", id, "err", err)
		}
		return
	}
	if recorded && st != nil {
		s.watch.publish(rec.Labels[LabelNode], st)
	}
}

// onOOM marks the container as OOM-killed. The exit usually follows; if it
// came first, the recorded reason is corrected and watchers are told.
func (s *session) onOOM(ctx context.Context, id string) {
	rec, ok := s.ours(ctx, id)
	if !ok {
		return
	}
	labels := map[string]string{labelOOMKilled: "true"}
	_, exited := rec.Labels[labelExitCode]
	if exited {
		labels[labelReason] = ReasonOOMKilled
	}
	if err := s.setLabels(ctx, id, labels); err != nil {
		s.logger.Warn("record OOM kill", "container", id, "err", err)
		return
	}
	if exited {
		if st, err := s.statusOf(ctx, id); err == nil {
			s.watch.publish(rec.Labels[LabelNode], st)
		}
	}
}

// reconcile records every exit of this session's containers that the event
// stream did not deliver.
func (s *session) reconcile(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, eventTimeout)
	defer cancel()
	recs, err := s.client.ContainerService().List(ctx, labelFilter(LabelKind, KindContainer))
	if err != nil {
		s.logger.Debug("reconcile: list containers", "err", err)
		return
	}
	procs, err := s.taskProcesses(ctx)
	if err != nil {
		s.logger.Debug("reconcile: list tasks", "err", err)
		return
	}
	for _, rec := range recs {
		p := procs[rec.ID]
		if p == nil || p.GetStatus() != task.Status_STOPPED || !s.serves(rec.Labels[LabelNode]) {
			continue
		}
		st, recorded, err := s.reap(ctx, rec.ID, p.GetExitStatus(), p.GetExitedAt().AsTime())
		if err != nil {
			s.logger.Warn("reconcile: record container exit", "container", rec.ID, "err", err)
			continue
		}
		if recorded && st != nil {
			s.watch.publish(rec.Labels[LabelNode], st)
		}
	}
}
