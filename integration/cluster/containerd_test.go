package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestStopRemovesContainersMountsAndNetns runs a container the way the
// runtime plugin does (image from the cluster's registry, namespace fedlet,
// a named network namespace), stops the cluster without stopping the
// container, and checks nothing is left: no process, no mount, no netns,
// and, after a restart, no container and no active snapshot.
func TestStopRemovesContainersMountsAndNetns(t *testing.T) {
	need(t, "root", os.Geteuid() == 0)
	_, err := exec.LookPath("runc")
	need(t, "runc on PATH", err == nil)
	_, err = exec.LookPath("ip")
	need(t, "ip (iproute2)", err == nil)

	dataDir := t.TempDir()
	c := startCluster(t, Options{DataDir: dataDir, Until: PartContainerd})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// One netns joined through a container's spec, one named by a sandbox
	// record's label, as the runtime plugin does.
	netns := addNetns(t, fmt.Sprintf("fedlet-test-%d", os.Getpid()))
	sandboxNetns := addNetns(t, fmt.Sprintf("fedlet-test-sandbox-%d", os.Getpid()))

	client, err := containerd.New(c.Paths().ContainerdSocket, containerd.WithDefaultNamespace(runtimeNamespace))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cctx := namespaces.WithNamespace(ctx, runtimeNamespace)
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchLocalhost)),
	})
	img, err := client.Pull(cctx, c.Image(), containerd.WithPullUnpack, containerd.WithResolver(resolver))
	if err != nil {
		t.Fatalf("pull %s: %v", c.Image(), err)
	}
	ctr, err := client.NewContainer(cctx, "sleeper",
		containerd.WithNewSnapshot("sleeper", img),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "1000"),
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.NewContainer(cctx, "sandbox-record",
		containerd.WithContainerLabels(map[string]string{netnsLabel: sandboxNetns}),
		containerd.WithSpec(&oci.Spec{Version: specs.Version})); err != nil {
		t.Fatal(err)
	}
	task, err := ctr.NewTask(cctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(cctx); err != nil {
		t.Fatal(err)
	}
	containerPid := int(task.Pid())
	client.Close()

	if err := c.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}

	if err := syscall.Kill(containerPid, 0); err == nil {
		t.Errorf("the container's process %d still runs", containerPid)
	}
	if procs := processesMentioning(t, dataDir); len(procs) > 0 {
		t.Errorf("processes left that mention %s:\n%s", dataDir, strings.Join(procs, "\n"))
	}
	if mounts, err := mountsUnder(dataDir); err != nil || len(mounts) > 0 {
		t.Errorf("mounts left under %s: %v %v", dataDir, mounts, err)
	}
	for _, ns := range []string{netns, sandboxNetns} {
		if _, err := os.Stat(ns); !os.IsNotExist(err) {
			t.Errorf("network namespace %s left behind (%v)", ns, err)
		}
	}

	// containerd's metadata: nothing of the container is left either.
	again := startCluster(t, Options{DataDir: dataDir, Until: PartContainerd})
	client, err = containerd.New(again.Paths().ContainerdSocket, containerd.WithDefaultNamespace(runtimeNamespace))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctrs, err := client.Containers(cctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs) != 0 {
		t.Errorf("%d containers left in namespace %s", len(ctrs), runtimeNamespace)
	}
	var active []string
	err = client.SnapshotService(defaults.DefaultSnapshotter).Walk(cctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			active = append(active, info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 0 {
		t.Errorf("active snapshots left: %v", active)
	}
	if _, err := client.GetImage(cctx, c.Image()); err != nil {
		t.Errorf("the pulled image should stay for the next start: %v", err)
	}
}

// processesMentioning lists the processes whose command line contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), s) {
			continue
		}
		found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return found
}

// addNetns makes a named network namespace as `ip netns add` does.
func addNetns(t *testing.T, name string) string {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	return filepath.Join(netnsDir, name)
}
