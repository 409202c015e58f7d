package local_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedlet/fedlet/csi/local"
)

const mib = 1 << 20

// clients are the CSI clients of one driver process.
type clients struct {
	csi.ControllerClient
	csi.NodeClient
}

func connect(t *testing.T, d *driver) clients {
	conn := dial(t, d.endpoint)
	return clients{csi.NewControllerClient(conn), csi.NewNodeClient(conn)}
}

func mountCapability(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func blockCapability() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

// mountsAt counts the node's mounts at path.
func mountsAt(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			n++
		}
	}
	return n
}

// loopsOf lists the loop devices attached to image.
func loopsOf(t *testing.T, image string) []string {
	t.Helper()
	out, err := exec.Command("losetup", "--noheadings", "--output", "NAME", "--associated", image).Output()
	if err != nil {
		t.Fatalf("losetup --associated %s: %v", image, err)
	}
	return strings.Fields(string(out))
}

// writeFile writes size bytes to path and syncs them, so that a full
// volume says so here and not later.
func writeFile(path string, size int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(bytes.Repeat([]byte{'x'}, size))
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// A filesystem volume through its whole life, with the driver killed in
// the middle: its capacity is enforced (ENOSPC), a repeated stage and
// publish after the restart finds the loop device and mounts already there
// and doubles neither, the data is kept, read-only publications refuse
// writes, online expansion grows the filesystem, and deletion leaves no
// loop device, mount or file behind.
func TestFilesystemVolumeAcrossRestart(t *testing.T) {
	needNode(t)
	ctx := t.Context()
	dir, stateDir := nodeDir(t)
	first := startDriver(t, dir, stateDir)
	c := connect(t, first)

	info, err := c.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil || info.GetNodeId() != "node-under-test" || info.GetMaxVolumesPerNode() != 5 ||
		info.GetAccessibleTopology().GetSegments()[local.TopologyKey] != "node-under-test" {
		t.Fatalf("NodeGetInfo = %v, %v; want node-under-test, 5 volumes, its topology", info, err)
	}
	capacity, err := c.GetCapacity(ctx, &csi.GetCapacityRequest{})
	if err != nil || capacity.GetAvailableCapacity() <= 0 {
		t.Fatalf("GetCapacity = %v, %v", capacity, err)
	}
	_, err = c.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               "too-big",
		CapacityRange:      &csi.CapacityRange{RequiredBytes: capacity.GetAvailableCapacity() + 1<<40},
		VolumeCapabilities: []*csi.VolumeCapability{mountCapability(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)},
	})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("CreateVolume beyond the node's free space: %v; want ResourceExhausted", err)
	}

	create := &csi.CreateVolumeRequest{
		Name:               "data",
		CapacityRange:      &csi.CapacityRange{RequiredBytes: 32 * mib},
		VolumeCapabilities: []*csi.VolumeCapability{mountCapability(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)},
	}
	vol, err := c.CreateVolume(ctx, create)
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	id := vol.GetVolume().GetVolumeId()
	if vol.GetVolume().GetCapacityBytes() != 32*mib || vol.GetVolume().GetAccessibleTopology()[0].GetSegments()[local.TopologyKey] != "node-under-test" {
		t.Errorf("CreateVolume = %v; want 32 MiB on node-under-test", vol)
	}
	image := filepath.Join(stateDir, "volumes", id+".img")

	staging, target, readOnly := filepath.Join(dir, "staging"), filepath.Join(dir, "pod-a", "mount"), filepath.Join(dir, "pod-b", "mount")
	stage := &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: create.VolumeCapabilities[0]}
	publish := &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging, TargetPath: target, VolumeCapability: create.VolumeCapabilities[0]}
	if _, err := c.NodeStageVolume(ctx, stage); err != nil {
		t.Fatalf("NodeStageVolume: %v", err)
	}
	if _, err := c.NodePublishVolume(ctx, publish); err != nil {
		t.Fatalf("NodePublishVolume: %v", err)
	}
	if err := writeFile(filepath.Join(target, "kept"), mib); err != nil {
		t.Fatalf("write 1 MiB: %v", err)
	}
	if err := writeFile(filepath.Join(target, "too-much"), 40*mib); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("writing 40 MiB into a 32 MiB volume: %v; want ENOSPC", err)
	}
	os.Remove(filepath.Join(target, "too-much"))

	// kill -9: nothing in the driver's memory is lost that matters.
	first.stop(t, syscall.SIGKILL)
	c = connect(t, startDriver(t, dir, stateDir))
	again, err := c.CreateVolume(ctx, create)
	if err != nil || again.GetVolume().GetVolumeId() != id {
		t.Errorf("CreateVolume repeated after the restart = %v, %v; want volume %s again", again, err, id)
	}
	bigger := &csi.CreateVolumeRequest{Name: create.Name, CapacityRange: &csi.CapacityRange{RequiredBytes: 64 * mib}, VolumeCapabilities: create.VolumeCapabilities}
	if _, err := c.CreateVolume(ctx, bigger); status.Code(err) != codes.AlreadyExists {
		t.Errorf("CreateVolume of the same name with a larger capacity: %v; want AlreadyExists", err)
	}
	if _, err := c.NodeStageVolume(ctx, stage); err != nil {
		t.Fatalf("NodeStageVolume repeated after the restart: %v", err)
	}
	if _, err := c.NodePublishVolume(ctx, publish); err != nil {
		t.Fatalf("NodePublishVolume repeated after the restart: %v", err)
	}
	if loops := loopsOf(t, image); len(loops) != 1 {
		t.Errorf("loop devices of the volume after a restart and a repeated stage: %v; want one", loops)
	}
	if n, m := mountsAt(t, staging), mountsAt(t, target); n != 1 || m != 1 {
		t.Errorf("mounts at the staging path: %d, at the target: %d; want one each", n, m)
	}
	if data, err := os.ReadFile(filepath.Join(target, "kept")); err != nil || len(data) != mib {
		t.Errorf("the data written before the restart: %d bytes, %v; want 1 MiB", len(data), err)
	}

	// Another volume cannot be published where this one is.
	other, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "other", VolumeCapabilities: create.VolumeCapabilities, CapacityRange: &csi.CapacityRange{RequiredBytes: 16 * mib}})
	if err != nil {
		t.Fatalf("CreateVolume other: %v", err)
	}
	otherID, otherStaging := other.GetVolume().GetVolumeId(), filepath.Join(dir, "staging-other")
	if _, err := c.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: otherID, StagingTargetPath: otherStaging, VolumeCapability: create.VolumeCapabilities[0]}); err != nil {
		t.Fatalf("NodeStageVolume other: %v", err)
	}
	_, err = c.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: otherID, StagingTargetPath: otherStaging, TargetPath: target, VolumeCapability: create.VolumeCapabilities[0]})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("NodePublishVolume of another volume at a published target: %v; want AlreadyExists", err)
	}
	if _, err := c.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: otherID, StagingTargetPath: otherStaging}); err != nil {
		t.Errorf("NodeUnstageVolume other: %v", err)
	}
	if _, err := c.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: otherID}); err != nil {
		t.Errorf("DeleteVolume other: %v", err)
	}

	roPublish := &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging, TargetPath: readOnly, VolumeCapability: create.VolumeCapabilities[0], Readonly: true}
	if _, err := c.NodePublishVolume(ctx, roPublish); err != nil {
		t.Fatalf("NodePublishVolume read-only: %v", err)
	}
	if _, err := os.Stat(filepath.Join(readOnly, "kept")); err != nil {
		t.Errorf("the read-only publication does not show the data: %v", err)
	}
	if err := writeFile(filepath.Join(readOnly, "refused"), 1); !errors.Is(err, syscall.EROFS) {
		t.Errorf("writing to a read-only publication: %v; want EROFS", err)
	}

	expanded, err := c.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: 96 * mib}})
	if err != nil || expanded.GetCapacityBytes() != 96*mib || !expanded.GetNodeExpansionRequired() {
		t.Fatalf("ControllerExpandVolume = %v, %v; want 96 MiB, node expansion required", expanded, err)
	}
	nodeExpand := &csi.NodeExpandVolumeRequest{VolumeId: id, VolumePath: target, VolumeCapability: create.VolumeCapabilities[0], CapacityRange: &csi.CapacityRange{RequiredBytes: 96 * mib}}
	_, err = c.NodeExpandVolume(ctx, nodeExpand)
	if testCanResizeOnline() {
		if err != nil {
			t.Fatalf("NodeExpandVolume online: %v", err)
		}
	} else {
		// Without CAP_SYS_RESOURCE a mounted ext4 cannot grow: the driver
		// says so, and grows it once the volume is published nowhere.
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("NodeExpandVolume of a published volume without CAP_SYS_RESOURCE: %v; want FailedPrecondition", err)
		}
		for _, p := range []string{target, readOnly} {
			if _, err := c.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: p}); err != nil {
				t.Fatalf("NodeUnpublishVolume %s: %v", p, err)
			}
		}
		nodeExpand.VolumePath = staging
		if _, err := c.NodeExpandVolume(ctx, nodeExpand); err != nil {
			t.Fatalf("NodeExpandVolume of a staged volume published nowhere: %v", err)
		}
		if n := mountsAt(t, staging); n != 1 {
			t.Errorf("mounts at the staging path after offline growth: %d; want one", n)
		}
		if _, err := c.NodePublishVolume(ctx, publish); err != nil {
			t.Fatalf("NodePublishVolume after growth: %v", err)
		}
	}
	if err := writeFile(filepath.Join(target, "after-expansion"), 60*mib); err != nil {
		t.Errorf("writing 60 MiB after online expansion to 96 MiB: %v", err)
	}
	stats, err := c.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: target})
	if err != nil || len(stats.GetUsage()) == 0 || stats.GetUsage()[0].GetTotal() < 80*mib || stats.GetUsage()[0].GetUsed() < 60*mib {
		t.Errorf("NodeGetVolumeStats after expansion and 61 MiB written = %v, %v; want a total near 96 MiB and at least 60 MiB used", stats, err)
	}

	for _, p := range []string{target, readOnly} {
		if _, err := c.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: p}); err != nil {
			t.Errorf("NodeUnpublishVolume %s: %v", p, err)
		}
	}
	if _, err := c.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("DeleteVolume of a staged volume: %v; want FailedPrecondition", err)
	}
	for range 2 {
		if _, err := c.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging}); err != nil {
			t.Errorf("NodeUnstageVolume: %v", err)
		}
	}
	if _, err := c.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Errorf("DeleteVolume: %v", err)
	}
	if _, err := os.Stat(image); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the backing file after DeleteVolume: %v; want it gone", err)
	}
	if list, err := c.ListVolumes(ctx, &csi.ListVolumesRequest{}); err != nil || len(list.GetEntries()) != 0 {
		t.Errorf("ListVolumes after deletion = %v, %v; want none", list, err)
	}
	checkNothingLeft(t, dir, stateDir)
}

// testCanResizeOnline says whether this process, and so the driver it
// starts, has CAP_SYS_RESOURCE, which growing a mounted ext4 takes.
func testCanResizeOnline() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(data)) {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && caps&(1<<24) != 0
		}
	}
	return false
}

// A raw block volume is its loop device, bound onto a file at the target
// path: a block device of exactly the volume's capacity.
func TestBlockVolume(t *testing.T) {
	needNode(t)
	ctx := context.Background()
	dir, stateDir := nodeDir(t)
	c := connect(t, startDriver(t, dir, stateDir))

	vol, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               "raw",
		CapacityRange:      &csi.CapacityRange{RequiredBytes: 20 * mib},
		VolumeCapabilities: []*csi.VolumeCapability{blockCapability()},
	})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	id := vol.GetVolume().GetVolumeId()
	staging, target := filepath.Join(dir, "staging"), filepath.Join(dir, "pod", "volumeDevices", "raw")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: blockCapability()}); err != nil {
		t.Fatalf("NodeStageVolume: %v", err)
	}
	if _, err := c.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging, TargetPath: target, VolumeCapability: blockCapability()}); err != nil {
		t.Fatalf("NodePublishVolume: %v", err)
	}
	info, err := os.Stat(target)
	if err != nil || info.Mode()&os.ModeDevice == 0 {
		t.Fatalf("the published target %s: %v, %v; want a block device", target, info, err)
	}
	f, err := os.OpenFile(target, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	size, err := f.Seek(0, 2)
	if err != nil || size != 20*mib {
		t.Errorf("the device's size: %d, %v; want 20 MiB", size, err)
	}
	if _, err := f.WriteAt([]byte("raw"), 20*mib-3); err != nil {
		t.Errorf("writing the device's last bytes: %v", err)
	}
	if n, err := f.WriteAt([]byte("beyond"), 20*mib); n != 0 || err == nil {
		t.Errorf("writing past the device's end wrote %d bytes (%v); want none", n, err)
	}
	f.Close()
	stats, err := c.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: target})
	if err != nil || stats.GetUsage()[0].GetTotal() != 20*mib {
		t.Errorf("NodeGetVolumeStats = %v, %v; want a total of 20 MiB", stats, err)
	}

	if _, err := c.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}); err != nil {
		t.Errorf("NodeUnpublishVolume: %v", err)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the target after NodeUnpublishVolume: %v; want it removed", err)
	}
	if _, err := c.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging}); err != nil {
		t.Errorf("NodeUnstageVolume: %v", err)
	}
	if _, err := c.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Errorf("DeleteVolume: %v", err)
	}
	checkNothingLeft(t, dir, stateDir)
}
