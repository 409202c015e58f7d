package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/fedlet/fedlet/integration/cluster"
)

// floor creates and starts the same container as the pods run, one at a
// time, straight through the containerd client: what no agent can beat.
func (b *bench) floor(ctx context.Context) ([]time.Duration, error) {
	client, err := containerd.New(b.cluster.Paths().ContainerdSocket)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	// The agent pulled the image into this namespace during the warm-up.
	ctx = namespaces.WithNamespace(ctx, "fedlet")
	image, err := client.GetImage(ctx, b.cluster.Image())
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", b.cluster.Image(), err)
	}
	fifos := filepath.Join(b.cluster.Paths().DataDir, "bench-fifo")
	if err := os.MkdirAll(fifos, 0o700); err != nil {
		return nil, err
	}
	var out []time.Duration
	for i := range b.n {
		id := fmt.Sprintf("bench-floor-%03d", i)
		start := time.Now()
		ctr, err := client.NewContainer(ctx, id,
			containerd.WithNewSnapshot(id, image),
			containerd.WithNewSpec(oci.WithImageConfig(image), oci.WithProcessArgs("sleep", "3600")))
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", id, err)
		}
		task, err := ctr.NewTask(ctx, cio.NullIO)
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", id, err)
		}
		if err := task.Start(ctx); err != nil {
			return nil, fmt.Errorf("start %s: %w", id, err)
		}
		out = append(out, time.Since(start))
		defer teardown(ctx, ctr, task)
	}
	return out, nil
}

func teardown(ctx context.Context, ctr containerd.Container, task containerd.Task) {
	_, _ = task.Delete(ctx, containerd.WithProcessKill)
	_ = ctr.Delete(ctx, containerd.WithSnapshotCleanup)
}

// rss reads the resident memory of the agent and of its runtime plugin.
func rss(c *cluster.Cluster) (agent, plugin int64, err error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	agentPID := ""
	procs := map[string][]string{}
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		procs[e.Name()] = argv
		if filepath.Base(argv[0]) == "fedlet" && strings.Contains(string(cmdline), c.Paths().AgentConfig) {
			agentPID = e.Name()
		}
	}
	if agentPID == "" {
		return 0, 0, fmt.Errorf("no agent process")
	}
	agent = vmRSS(agentPID)
	for pid, argv := range procs {
		if filepath.Base(argv[0]) == "fedlet-runtime-containerd" && len(argv) == 1 && parentOf(pid) == agentPID {
			plugin = vmRSS(pid)
		}
	}
	return agent, plugin, nil
}

func vmRSS(pid string) int64 {
	data, _ := os.ReadFile(filepath.Join("/proc", pid, "status"))
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

func parentOf(pid string) string {
	data, _ := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return ""
	}
	return fields[1]
}
