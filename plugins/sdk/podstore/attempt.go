package podstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/containerwatch"
	"github.com/fedlet/fedlet/plugins/sdk/crilog"
	"github.com/fedlet/fedlet/plugins/sdk/keeper"
	"github.com/fedlet/fedlet/plugins/sdk/ocispec"
	"github.com/fedlet/fedlet/plugins/sdk/statefile"
)

// Attempt is one attempt of a container: what the plugin recorded when it
// started it, and its state now.
type Attempt struct {
	// Dir is the attempt's directory (AttemptDir); the keeper runs it there.
	Dir string `json:"-"`
	// Status is the attempt's status: as recorded, the pod, name, attempt,
	// id, image, image ref and creation time; as read, its state too.
	Status *runtimev1.ContainerStatus `json:"status"`
	// Stdin: the container was started with stdin (Attach may write it).
	Stdin bool `json:"stdin,omitempty"`
	// Data holds what the backend keeps of the attempt (its cgroup, say).
	Data map[string]string `json:"data,omitempty"`
}

// Running says whether the attempt may still write output.
func (a Attempt) Running() bool { st, _ := keeper.Read(a.Dir); return !st.Exited }

// LogPath is the attempt's CRI log, written by its keeper.
func (a Attempt) LogPath() string { return keeper.LogPath(a.Dir) }

// TerminationLog is the host file of the attempt's termination message
// (ocispec.Container.TerminationLog).
func (a Attempt) TerminationLog() string { return filepath.Join(a.Dir, "termination-log") }

// Record records an attempt about to start, in a.Dir, made if needed.
func (s *Store) Record(a Attempt) error {
	if err := os.MkdirAll(a.Dir, 0o700); err != nil {
		return fmt.Errorf("make the directory of %s: %w", a.Status.GetId(), err)
	}
	return statefile.Write(filepath.Join(a.Dir, "attempt.json"), a)
}

// Started says whether the attempt in dir has been started (it may have
// exited since): a repeated StartContainer starts nothing then.
func Started(dir string) bool {
	st, _ := keeper.Read(dir)
	return st.Started || st.Exited
}

// Attempt reads the attempt in dir and its state; NotFound when it is gone.
func (s *Store) Attempt(dir string) (Attempt, error) {
	a := Attempt{Dir: dir}
	if ok, err := statefile.Read(filepath.Join(dir, "attempt.json"), &a); !ok || err != nil || a.Status == nil {
		return a, status.Errorf(codes.NotFound, "no container attempt in %s (%v)", dir, err)
	}
	a.Dir = dir
	st, err := keeper.Read(dir)
	cs := a.Status
	cs.State = runtimev1.ContainerState_CONTAINER_STATE_CREATED
	if !st.StartedAt.IsZero() {
		cs.State, cs.StartedAtUnixNano = runtimev1.ContainerState_CONTAINER_STATE_RUNNING, st.StartedAt.UnixNano()
	}
	if st.Exited {
		cs.State, cs.ExitCode, cs.FinishedAtUnixNano = runtimev1.ContainerState_CONTAINER_STATE_EXITED, int32(st.ExitCode), st.FinishedAt.UnixNano()
		cs.Reason = "Completed"
		if st.ExitCode != 0 {
			cs.Reason = "Error"
			if r := s.exitReason(a); r != "" {
				cs.Reason = r
			}
		}
		cs.Message = ocispec.TerminationMessage(a.TerminationLog())
	}
	return a, err
}

func (s *Store) exitReason(a Attempt) string {
	if s.hooks.ExitReason == nil {
		return ""
	}
	return s.hooks.ExitReason(a)
}

// attempts lists the attempts in podDir, of the named container or of all
// (name empty), oldest first.
func (s *Store) attempts(podDir, name string) []Attempt {
	files, _ := filepath.Glob(filepath.Join(podDir, "*", "attempt.json"))
	var out []Attempt
	for _, f := range files {
		if a, err := s.Attempt(filepath.Dir(f)); err == nil && (name == "" || a.Status.GetName() == name) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Status.GetAttempt() < out[j].Status.GetAttempt() })
	return out
}

// Newest returns the container's newest attempt, or with previous the one
// before it; NotFound when there is none.
func (s *Store) Newest(uid, name string, previous bool) (Attempt, error) {
	all := s.attempts(s.podDir(uid), name)
	n := len(all) - 1
	if previous {
		n--
	}
	if n < 0 {
		return Attempt{}, status.Errorf(codes.NotFound, "pod %s has no container %s (previous %v)", uid, name, previous)
	}
	return all[n], nil
}

// Running returns the container's newest attempt; FailedPrecondition
// unless it runs: what Exec and Attach need.
func (s *Store) Running(uid, name string) (Attempt, error) {
	a, err := s.Newest(uid, name, false)
	if err == nil && a.Status.GetState() != runtimev1.ContainerState_CONTAINER_STATE_RUNNING {
		err = status.Errorf(codes.FailedPrecondition, "container %s of pod %s does not run", name, uid)
	}
	return a, err
}

// Stop serves StopContainer: it signals the newest attempt with signal
// ("TERM"), waits up to the grace period for it to exit, then signals
// "KILL" and waits, and returns its final status. An attempt that has
// exited gets no signal.
func (s *Store) Stop(ctx context.Context, req *runtimev1.StopContainerRequest, signal func(ctx context.Context, a Attempt, sig string) error) (*runtimev1.ContainerStatus, error) {
	a, err := s.Newest(req.GetPodUid(), req.GetName(), false)
	grace := time.Duration(req.GetGracePeriodSeconds()) * time.Second
	for _, sig := range []string{"TERM", "KILL"} {
		if err != nil || a.Status.GetState() == runtimev1.ContainerState_CONTAINER_STATE_EXITED {
			break
		}
		_ = signal(ctx, a, sig) // fails when it has just exited
		a, err = s.waitExit(ctx, a.Dir, grace)
		grace = time.Minute
	}
	return a.Status, err
}

// waitExit waits up to timeout for the attempt in dir to exit, and
// returns it then.
func (s *Store) waitExit(ctx context.Context, dir string, timeout time.Duration) (Attempt, error) {
	deadline := time.Now().Add(timeout)
	for {
		a, err := s.Attempt(dir)
		if err != nil || a.Status.GetState() == runtimev1.ContainerState_CONTAINER_STATE_EXITED || time.Now().After(deadline) {
			return a, err
		}
		select {
		case <-ctx.Done():
			return a, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RemoveContainer serves RemoveContainer: it releases and removes the
// container's exited attempts older than keep_attempt.
func (s *Store) RemoveContainer(ctx context.Context, req *runtimev1.RemoveContainerRequest) error {
	for _, a := range s.attempts(s.podDir(req.GetPodUid()), req.GetName()) {
		if a.Status.GetAttempt() < req.GetKeepAttempt() && a.Status.GetState() == runtimev1.ContainerState_CONTAINER_STATE_EXITED {
			if err := s.remove(ctx, a.Dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// releaseTimeout bounds the wait for a released attempt to exit.
const releaseTimeout = 10 * time.Second

// remove releases the attempt in dir, waits for it to exit if it ran, and
// removes its directory.
func (s *Store) remove(ctx context.Context, dir string) error {
	a, err := s.Attempt(dir)
	if err != nil {
		a = Attempt{Dir: dir} // a start cut short before it was recorded
	}
	if s.hooks.Release != nil {
		if err := s.hooks.Release(ctx, a); err != nil {
			return err
		}
	}
	if a.Status.GetState() == runtimev1.ContainerState_CONTAINER_STATE_RUNNING {
		if _, err := s.waitExit(ctx, dir, releaseTimeout); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove container attempt %s: %w", dir, err)
	}
	return nil
}

// Watch serves WatchContainers from the store, polled
// (containerwatch.Poll).
func (s *Store) Watch(srv grpc.ServerStreamingServer[runtimev1.ContainerStatus]) error {
	return containerwatch.Poll(srv, 0, func(context.Context) ([]*runtimev1.ContainerStatus, error) {
		resp, err := s.ListSandboxes()
		var all []*runtimev1.ContainerStatus
		for _, sb := range resp.GetSandboxes() {
			all = append(all, sb.GetContainers()...)
		}
		return all, err
	})
}

// Logs serves ContainerLogs from the attempts' CRI logs: the newest
// attempt's, or with previous the one before it.
func (s *Store) Logs(req *runtimev1.ContainerLogsRequest, srv grpc.ServerStreamingServer[runtimev1.LogChunk]) error {
	a, err := s.Newest(req.GetPodUid(), req.GetContainer(), req.GetPrevious())
	if err != nil {
		return err
	}
	return crilog.Send(srv.Context(), a.LogPath(), req, a.Running, srv)
}
