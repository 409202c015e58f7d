package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// process is one entry of /proc.
type process struct {
	pid, ppid int
	argv      []string
}

func processes(t *testing.T) []process {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		ppid, _ := strconv.Atoi(fields[1])
		out = append(out, process{pid: pid, ppid: ppid, argv: strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")})
	}
	return out
}

// agentPID is the PID of the cluster's agent process.
func agentPID(t *testing.T) int {
	t.Helper()
	for _, p := range processes(t) {
		if filepath.Base(p.argv[0]) == "fedlet" && slices.Contains(p.argv, "agent") && slices.Contains(p.argv, env.Paths().AgentConfig) {
			return p.pid
		}
	}
	t.Fatalf("no agent process with config %s", env.Paths().AgentConfig)
	return 0
}

// pluginPID is the PID of the containerd runtime plugin the agent runs (not
// of the log writers the shims start from the same executable).
func pluginPID(t *testing.T) int {
	t.Helper()
	agent := agentPID(t)
	for _, p := range processes(t) {
		if p.ppid == agent && filepath.Base(p.argv[0]) == "fedlet-runtime-containerd" && len(p.argv) == 1 {
			return p.pid
		}
	}
	return 0
}

// startProcess starts cmd with its output captured. The returned stop sends
// SIGTERM, kills it if it has not exited within timeout (reporting whether it
// did exit in time), and logs its output if it did not or the test failed.
func startProcess(t *testing.T, what string, cmd *exec.Cmd) (stop func(timeout time.Duration) bool) {
	t.Helper()
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", what, err)
	}
	return func(timeout time.Duration) bool {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		inTime := true
		select {
		case <-done:
		case <-time.After(timeout):
			_ = cmd.Process.Kill()
			<-done
			inTime = false
		}
		if !inTime || t.Failed() {
			t.Logf("%s's log:\n%s", what, log.String())
		}
		return inTime
	}
}
