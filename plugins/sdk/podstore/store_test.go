package podstore_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/keeper"
	"github.com/fedlet/fedlet/plugins/sdk/podstore"
)

// TestMain lets the test binary be the keeper, as a plugin's main does.
func TestMain(m *testing.M) {
	keeper.Main()
	os.Exit(m.Run())
}

// start records and starts an attempt running `sh -c script`.
func start(t *testing.T, s *podstore.Store, pod *runtimev1.PodRef, name string, attempt uint32, script string) podstore.Attempt {
	t.Helper()
	a := podstore.Attempt{Dir: s.AttemptDir(pod.GetUid(), name, attempt), Status: &runtimev1.ContainerStatus{Pod: pod, Name: name, Attempt: attempt, Id: name}}
	if err := s.Record(a); err != nil {
		t.Fatal(err)
	}
	if _, err := keeper.Start(t.Context(), keeper.Spec{Dir: a.Dir, Args: []string{"sh", "-c", script}}); err != nil {
		t.Fatal(err)
	}
	return a
}

func waitState(t *testing.T, s *podstore.Store, dir string, want runtimev1.ContainerState) *runtimev1.ContainerStatus {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		a, err := s.Attempt(dir)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status.GetState() == want || time.Now().After(deadline) {
			return a.Status
		}
	}
}

// TestAttempts: attempts are listed with their sandbox and their states
// read from their keepers; a new Store on the same directory (a restarted
// plugin) sees the same; Stop signals, RemoveContainer and RemoveSandbox
// remove, releasing each attempt.
func TestAttempts(t *testing.T) {
	dir := t.TempDir()
	var released []string
	hooks := podstore.Hooks{
		ExitReason: func(a podstore.Attempt) string {
			if a.Status.GetExitCode() == 5 {
				return "Five"
			}
			return ""
		},
		Release: func(_ context.Context, a podstore.Attempt) error {
			released = append(released, a.Status.GetId())
			return nil
		},
	}
	s, err := podstore.New(dir, hooks)
	if err != nil {
		t.Fatal(err)
	}
	pod := &runtimev1.PodRef{Uid: "uid-1", Namespace: "ns", Name: "pod"}
	sb, err := s.RunSandbox(&runtimev1.RunSandboxRequest{Pod: pod, HostNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.RunSandbox(&runtimev1.RunSandboxRequest{Pod: pod, HostNetwork: true}); again.GetCreatedAtUnixNano() != sb.GetCreatedAtUnixNano() {
		t.Errorf("a repeated RunSandbox made a new sandbox")
	}

	a0 := start(t, s, pod, "app", 0, "echo zero; exit 5")
	if st := waitState(t, s, a0.Dir, runtimev1.ContainerState_CONTAINER_STATE_EXITED); st.GetExitCode() != 5 || st.GetReason() != "Five" {
		t.Errorf("attempt 0: %v, want exit code 5 with the hook's reason", st)
	}
	a1 := start(t, s, pod, "app", 1, "trap 'exit 0' TERM; echo one; sleep 60 & wait")
	waitState(t, s, a1.Dir, runtimev1.ContainerState_CONTAINER_STATE_RUNNING)

	restarted, err := podstore.New(dir, hooks)
	if err != nil {
		t.Fatal(err)
	}
	list, err := restarted.ListSandboxes()
	if err != nil || len(list.GetSandboxes()) != 1 || len(list.GetSandboxes()[0].GetContainers()) != 2 {
		t.Fatalf("a new store lists %v (%v), want the sandbox with both attempts", list, err)
	}
	if prev, err := restarted.Newest(pod.GetUid(), "app", true); err != nil || prev.Status.GetAttempt() != 0 {
		t.Errorf("previous: %v, %v; want attempt 0", prev.Status, err)
	}
	if _, err := restarted.Running(pod.GetUid(), "other"); status.Code(err) != codes.NotFound {
		t.Errorf("Running of an unknown container: %v, want NotFound", err)
	}

	st, err := restarted.Stop(t.Context(), &runtimev1.StopContainerRequest{PodUid: pod.GetUid(), Name: "app", GracePeriodSeconds: 30},
		func(_ context.Context, a podstore.Attempt, sig string) error {
			pid, _ := keeper.Read(a.Dir)
			return syscall.Kill(pid.Pid, map[string]syscall.Signal{"TERM": syscall.SIGTERM, "KILL": syscall.SIGKILL}[sig])
		})
	if err != nil || st.GetAttempt() != 1 || st.GetState() != runtimev1.ContainerState_CONTAINER_STATE_EXITED || st.GetExitCode() != 0 {
		t.Errorf("Stop: %v, %v; want attempt 1 exited 0 on TERM", st, err)
	}
	if err := restarted.RemoveContainer(t.Context(), &runtimev1.RemoveContainerRequest{PodUid: pod.GetUid(), Name: "app", KeepAttempt: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Newest(pod.GetUid(), "app", true); status.Code(err) != codes.NotFound {
		t.Errorf("attempt 0 after RemoveContainer keeping 1: %v, want it gone", err)
	}
	if err := restarted.RemoveSandbox(t.Context(), pod.GetUid()); err != nil {
		t.Fatal(err)
	}
	if list, _ := restarted.ListSandboxes(); len(list.GetSandboxes()) != 0 {
		t.Errorf("ListSandboxes after RemoveSandbox: %v", list)
	}
	if len(released) != 2 || released[0] != "app" || released[1] != "app" {
		t.Errorf("released %v, want both attempts", released)
	}
}
