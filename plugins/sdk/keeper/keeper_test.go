package keeper_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/fedlet/fedlet/plugins/sdk/crilog"
	"github.com/fedlet/fedlet/plugins/sdk/keeper"
)

// TestMain lets the test binary be the supervisor, as a plugin's main does.
func TestMain(m *testing.M) {
	keeper.Main()
	os.Exit(m.Run())
}

// waitExit reads the files until the process has exited.
func waitExit(t *testing.T, dir string) keeper.State {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := keeper.Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Exited {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the process did not exit within 30s: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logs reads the process's log, stdout and stderr apart.
func logs(t *testing.T, dir string) (string, string) {
	t.Helper()
	var out, errs bytes.Buffer
	if err := crilog.Read(context.Background(), keeper.LogPath(dir), crilog.Options{TailLines: -1}, nil, &out, &errs); err != nil {
		t.Fatal(err)
	}
	return out.String(), errs.String()
}

// TestRecordsOutputAndExit: the keeper records the start, the output of
// each stream, and the exit code.
func TestRecordsOutputAndExit(t *testing.T) {
	dir := t.TempDir()
	st, err := keeper.Start(t.Context(), keeper.Spec{Dir: dir, Args: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Started && !st.Exited {
		t.Fatalf("Start returned before the process started: %+v", st)
	}
	st = waitExit(t, dir)
	if st.ExitCode != 3 || st.FinishedAt.Before(st.StartedAt) || st.Pid == 0 {
		t.Errorf("state %+v, want exit code 3, a pid, and a finish after the start", st)
	}
	if out, errs := logs(t, dir); out != "out\n" || errs != "err\n" {
		t.Errorf("stdout %q, stderr %q; want %q and %q", out, errs, "out\n", "err\n")
	}
}

// TestSignalExit: a process a signal ends exits with 128 + the signal.
func TestSignalExit(t *testing.T) {
	dir := t.TempDir()
	st, err := keeper.Start(t.Context(), keeper.Spec{Dir: dir, Args: []string{"sleep", "60"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, dir); st.ExitCode != 137 {
		t.Errorf("exit code %d, want 137", st.ExitCode)
	}
}

// TestStdinOnce: what is written through AttachStdin is the process's
// stdin, and with StdinOnce closing the connection ends it.
func TestStdinOnce(t *testing.T) {
	dir := t.TempDir()
	if _, err := keeper.Start(t.Context(), keeper.Spec{Dir: dir, Args: []string{"sh", "-c", "cat; echo bye"}, Stdin: true, StdinOnce: true}); err != nil {
		t.Fatal(err)
	}
	in, err := keeper.AttachStdin(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	_ = in.Close()
	if st := waitExit(t, dir); st.ExitCode != 0 {
		t.Errorf("exit code %d, want 0", st.ExitCode)
	}
	if out, _ := logs(t, dir); out != "hello\nbye\n" {
		t.Errorf("stdout %q, want %q", out, "hello\nbye\n")
	}
}

// TestMissingCommand: a command that cannot start is recorded as exited
// with 127, as a shell reports it.
func TestMissingCommand(t *testing.T) {
	dir := t.TempDir()
	st, err := keeper.Start(t.Context(), keeper.Spec{Dir: dir, Args: []string{"/nonexistent/command"}})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Exited || st.Started || st.ExitCode != 127 {
		t.Errorf("state %+v, want exited with 127, never started", st)
	}
}

// TestExitNotHeldByChildren: the exit is recorded when the process exits,
// with what it wrote, though a child it left behind holds its output.
func TestExitNotHeldByChildren(t *testing.T) {
	dir := t.TempDir()
	st, err := keeper.Start(t.Context(), keeper.Spec{Dir: dir, Args: []string{"sh", "-c", "echo out; sleep 30 & echo $! > " + dir + "/child"}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !st.Exited && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if st, err = keeper.Read(dir); err != nil {
			t.Fatal(err)
		}
	}
	if !st.Exited || st.ExitCode != 0 {
		t.Fatalf("state %+v 10s after a start that exits at once, want exited 0", st)
	}
	if out, _ := logs(t, dir); out != "out\n" {
		t.Errorf("stdout %q, want %q", out, "out\n")
	}
	if data, err := os.ReadFile(dir + "/child"); err == nil {
		var pid int
		if _, err := fmt.Sscan(string(data), &pid); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
