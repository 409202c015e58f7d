package e2e

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	runtime "github.com/fedlet/fedlet/plugins/runtime/containerd"
)

// hostState is what containerd and the kernel hold for one pod.
type hostState struct {
	containers, tasks, runningTasks, snapshots, mounts, netns int
}

// inspectHost counts what the host holds for the pod with that UID, straight
// from containerd and /proc, not through fedlet.
func inspectHost(t *testing.T, uid string) hostState {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), "fedlet")
	client, err := containerd.New(env.Paths().ContainerdSocket)
	if err != nil {
		t.Fatalf("connect to containerd: %v", err)
	}
	defer client.Close()
	var st hostState
	ctrs, err := client.Containers(ctx, `labels."`+runtime.LabelPodUID+`"==`+uid)
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	keys := map[string]bool{}
	for _, c := range ctrs {
		st.containers++
		info, err := c.Info(ctx)
		if err == nil && info.SnapshotKey != "" {
			keys[info.SnapshotKey] = true
		}
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue
		}
		st.tasks++
		if s, err := task.Status(ctx); err == nil && s.Status == containerd.Running {
			st.runningTasks++
		}
	}
	err = client.SnapshotService("overlayfs").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if keys[info.Name] || strings.Contains(info.Name, uid) {
			st.snapshots++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk snapshots: %v", err)
	}
	st.mounts = countMatching(t, "/proc/self/mountinfo", func(line string) bool {
		for _, c := range ctrs {
			if strings.Contains(line, c.ID()) {
				return true
			}
		}
		return strings.Contains(line, uid)
	})
	if _, err := os.Stat("/run/netns/fedlet-" + uid); err == nil {
		st.netns++
	}
	return st
}

func countMatching(t *testing.T, path string, match func(string) bool) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if match(sc.Text()) {
			n++
		}
	}
	return n
}

// taskPIDs maps each running container of the pod (by containerd ID) to its
// main process's PID, straight from containerd.
func taskPIDs(t *testing.T, uid string) map[string]uint32 {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), "fedlet")
	client, err := containerd.New(env.Paths().ContainerdSocket)
	if err != nil {
		t.Fatalf("connect to containerd: %v", err)
	}
	defer client.Close()
	ctrs, err := client.Containers(ctx, `labels."`+runtime.LabelPodUID+`"==`+uid)
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	pids := map[string]uint32{}
	for _, c := range ctrs {
		if task, err := c.Task(ctx, nil); err == nil {
			pids[c.ID()] = task.Pid()
		}
	}
	return pids
}
