package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// netnsDir is where named network namespaces are bind-mounted (ip netns).
const netnsDir = "/run/netns"

// netnsLabel is the label on the containerd runtime plugin's sandbox
// records that names the pod's network namespace.
const netnsLabel = "fedlet.io/netns"

// removeRuntimeObjects deletes every task, container and uncommitted
// snapshot in containerd's fedlet namespace, so that stopping the cluster
// leaves no process or mount behind. Image layers (committed snapshots) and
// content stay, for the next start. It returns the named network namespaces
// under /run/netns that the containers used, to be removed once containerd
// is gone.
func removeRuntimeObjects(ctx context.Context, socket string) ([]string, error) {
	client, err := containerd.New(socket, containerd.WithDefaultNamespace(runtimeNamespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd: %w", err)
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, runtimeNamespace)

	ctrs, err := client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var netns []string
	var errs []error
	addNetns := func(path string) {
		if ownedNetns(path) && !slices.Contains(netns, path) {
			netns = append(netns, path)
		}
	}
	for _, ctr := range ctrs {
		// A pod's sandbox record names its netns in a label; its containers
		// join it through their spec.
		if labels, err := ctr.Labels(ctx); err == nil {
			addNetns(labels[netnsLabel])
		}
		if spec, err := ctr.Spec(ctx); err == nil && spec.Linux != nil {
			for _, ns := range spec.Linux.Namespaces {
				if ns.Type == "network" {
					addNetns(ns.Path)
				}
			}
		}
		if task, err := ctr.Task(ctx, nil); err == nil {
			if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete task %s: %w", ctr.ID(), err))
			}
		} else if !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("load task %s: %w", ctr.ID(), err))
		}
		if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete container %s: %w", ctr.ID(), err))
		}
	}
	errs = append(errs, removeActiveSnapshots(ctx, client))
	return netns, errors.Join(errs...)
}

// removeActiveSnapshots removes the snapshots that are not image layers
// (active ones are container root filesystems; views are read-only mounts)
// from every snapshotter containerd runs.
func removeActiveSnapshots(ctx context.Context, client *containerd.Client) error {
	resp, err := client.IntrospectionService().Plugins(ctx, "type==io.containerd.snapshotter.v1")
	if err != nil {
		return fmt.Errorf("list snapshotters: %w", err)
	}
	var errs []error
	for _, p := range resp.Plugins {
		if p.InitErr != nil {
			continue
		}
		sn := client.SnapshotService(p.ID)
		var keys []string
		err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			if info.Kind != snapshots.KindCommitted {
				keys = append(keys, info.Name)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s snapshots: %w", p.ID, err))
			continue
		}
		for _, k := range keys {
			if err := sn.Remove(ctx, k); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove %s snapshot %s: %w", p.ID, k, err))
			}
		}
	}
	return errors.Join(errs...)
}

// ownedNetns says whether path is a network namespace fedlet's runtime
// would have made: /run/netns/fedlet-*.
func ownedNetns(path string) bool {
	return filepath.Dir(path) == netnsDir && strings.HasPrefix(filepath.Base(path), "fedlet-")
}

// removeNetns unmounts and deletes named network namespaces.
func removeNetns(paths []string) error {
	var errs []error
	for _, p := range paths {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unmountUnder unmounts everything mounted strictly below dir, deepest first.
func unmountUnder(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m, 0); err != nil {
			// Busy: detach it now; the kernel finishes when the last user goes.
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points strictly below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "36 35 98:0 /root /mount/point rw,noatime ... - ext4 /dev/x rw"
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		point := unescapeMountinfo(fields[4])
		if strings.HasPrefix(point, prefix) {
			mounts = append(mounts, point)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	// A deeper mount point is a longer path. Mounts stacked on one path are
	// listed once each, so each is unmounted in turn.
	slices.SortStableFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	return mounts, nil
}

// unescapeMountinfo decodes the octal escapes (\040 for a space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// killShims kills the runc shims still serving the containerd at socket.
// They run in sessions of their own, so stopping containerd's process group
// does not reach them.
func killShims(socket string) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if filepath.Base(argv[0]) == "containerd-shim-runc-v2" && slices.Contains(argv, socket) {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	return nil
}
