package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeGetCapabilities declares staging (the loop device and the ext4
// mount, shared by the volume's publications), volume statistics and
// expansion.
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	var caps []*csi.NodeServiceCapability
	for _, c := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
	} {
		caps = append(caps, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{
			Rpc: &csi.NodeServiceCapability_RPC{Type: c},
		}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodeGetInfo names the node, its topology and how many volumes it takes.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.configured(); err != nil {
		return nil, err
	}
	return &csi.NodeGetInfoResponse{
		NodeId:             d.cfg.NodeID,
		MaxVolumesPerNode:  d.cfg.MaxVolumes,
		AccessibleTopology: d.topology(),
	}, nil
}

// NodeStageVolume attaches the volume's loop device and, for a
// filesystem, formats it ext4 on first use and mounts it at the staging
// path. A volume staged already is left as it is.
func (d *Driver) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	staging := req.GetStagingTargetPath()
	if err := checkCapabilities([]*csi.VolumeCapability{req.GetVolumeCapability()}); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.volume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	dev, err := attachLoop(ctx, d.exec, v.Image)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	mnt := req.GetVolumeCapability().GetMount()
	if mnt == nil {
		return &csi.NodeStageVolumeResponse{}, nil // block: the loop device is the stage
	}
	mounted, err := d.mountedDevice(staging)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if mounted == dev {
		return &csi.NodeStageVolumeResponse{}, nil
	}
	if mounted != "" {
		return nil, status.Errorf(codes.AlreadyExists, "staging_target_path %s: %s is mounted there, not volume %s (%s)", staging, mounted, v.ID, dev)
	}
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "stage volume %s: %v", v.ID, err)
	}
	// A volume expanded while it was not staged grows here, unmounted.
	if format, err := d.mounter.GetDiskFormat(dev); err != nil {
		return nil, status.Errorf(codes.Internal, "stage volume %s: %v", v.ID, err)
	} else if format == "ext4" {
		grow, err := needsGrowing(ctx, d.exec, dev)
		if err == nil && grow {
			err = growOffline(ctx, d.exec, dev)
		}
		if err != nil {
			return nil, status.Errorf(codes.Internal, "stage volume %s: %v", v.ID, err)
		}
	}
	if err := d.mounter.FormatAndMount(dev, staging, "ext4", mnt.GetMountFlags()); err != nil {
		return nil, status.Errorf(codes.Internal, "stage volume %s: %v", v.ID, err)
	}
	return &csi.NodeStageVolumeResponse{}, nil
}

// NodeUnstageVolume unmounts the staging path and detaches the volume's
// loop devices. A volume unstaged already is no error.
func (d *Driver) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	store, err := d.configured()
	if err != nil {
		return nil, err
	}
	if err := d.unmount(req.GetStagingTargetPath(), false); err != nil {
		return nil, status.Errorf(codes.Internal, "unstage volume %s: %v", req.GetVolumeId(), err)
	}
	if volumeIDPattern.MatchString(req.GetVolumeId()) {
		if err := detachLoops(ctx, d.exec, store.imagePath(req.GetVolumeId())); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// NodePublishVolume bind-mounts the staged volume at the target path: the
// ext4 mount onto a directory, or the loop device onto a file for a block
// volume; read-only when asked. A target published already is left as it
// is.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	target := req.GetTargetPath()
	if req.GetStagingTargetPath() == "" {
		return nil, status.Error(codes.InvalidArgument, "staging_target_path: must be set: the driver stages volumes")
	}
	if err := checkCapabilities([]*csi.VolumeCapability{req.GetVolumeCapability()}); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.volume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	devices, err := loopDevices(ctx, d.exec, v.Image)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if len(devices) == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is not staged", v.ID)
	}
	options := []string{"bind"}
	if req.GetReadonly() || req.GetVolumeCapability().GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY {
		options = append(options, "ro")
	}

	source := devices[0]
	if mnt := req.GetVolumeCapability().GetMount(); mnt != nil {
		source = req.GetStagingTargetPath()
		staged, err := d.mountedDevice(source)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		if staged != devices[0] {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is not staged at %s", v.ID, source)
		}
		options = append(options, mnt.GetMountFlags()...)
		if err := os.MkdirAll(target, 0o750); err != nil {
			return nil, status.Errorf(codes.Internal, "publish volume %s: %v", v.ID, err)
		}
	} else if err := makeFile(target); err != nil {
		return nil, status.Errorf(codes.Internal, "publish volume %s: %v", v.ID, err)
	}

	mounted, err := d.mountedDevice(target)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "publish volume %s: %v", v.ID, err)
	}
	// A filesystem's bind mount shows the loop device in the mount table; a
	// block device's shows the filesystem its device node lives on.
	if mounted != "" && req.GetVolumeCapability().GetMount() != nil && mounted != devices[0] {
		return nil, status.Errorf(codes.AlreadyExists, "target_path %s: %s is mounted there, not volume %s", target, mounted, v.ID)
	}
	if mounted != "" {
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if err := d.mounter.Mount(source, target, "", options); err != nil {
		return nil, status.Errorf(codes.Internal, "publish volume %s at %s: %v", v.ID, target, err)
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts the target path and removes it. A target
// unpublished already is no error.
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.configured(); err != nil {
		return nil, err
	}
	if err := d.unmount(req.GetTargetPath(), true); err != nil {
		return nil, status.Errorf(codes.Internal, "unpublish volume %s: %v", req.GetVolumeId(), err)
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// NodeGetVolumeStats reports the volume's space and inodes at a path it
// is staged or published at; a block volume's size only.
func (d *Driver) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.volume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(req.GetVolumePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.NotFound, "volume_path %s does not exist", req.GetVolumePath())
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if !info.IsDir() {
		return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Total: v.Capacity}}}, nil
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(req.GetVolumePath(), &fs); err != nil {
		return nil, status.Errorf(codes.Internal, "statistics of volume %s: %v", v.ID, err)
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{
			Unit:      csi.VolumeUsage_BYTES,
			Total:     int64(fs.Blocks) * fs.Bsize,
			Available: int64(fs.Bavail) * fs.Bsize,
			Used:      int64(fs.Blocks-fs.Bfree) * fs.Bsize,
		},
		{
			Unit:      csi.VolumeUsage_INODES,
			Total:     int64(fs.Files),
			Available: int64(fs.Ffree),
			Used:      int64(fs.Files - fs.Ffree),
		},
	}}, nil
}

// NodeExpandVolume makes the loop device see the grown backing file and
// grows the ext4 filesystem on it, online (resize2fs).
func (d *Driver) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.volume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if v.Capacity < req.GetCapacityRange().GetRequiredBytes() {
		return nil, status.Errorf(codes.OutOfRange, "volume %s has %d bytes, %d required: expand it through the controller first", v.ID, v.Capacity, req.GetCapacityRange().GetRequiredBytes())
	}
	devices, err := loopDevices(ctx, d.exec, v.Image)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if len(devices) == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is not staged", v.ID)
	}
	dev := devices[0]
	if err := refreshLoop(ctx, d.exec, dev); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if info, err := os.Stat(req.GetVolumePath()); req.GetVolumeCapability().GetBlock() != nil || (err == nil && !info.IsDir()) {
		return &csi.NodeExpandVolumeResponse{CapacityBytes: v.Capacity}, nil // block: the device is the volume
	}
	grow, err := needsGrowing(ctx, d.exec, dev)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "expand volume %s: %v", v.ID, err)
	}
	if grow {
		if err := d.growFilesystem(ctx, dev, req.GetVolumeCapability().GetMount().GetMountFlags()); err != nil {
			return nil, err
		}
	}
	return &csi.NodeExpandVolumeResponse{CapacityBytes: v.Capacity}, nil
}

// growFilesystem grows the ext4 on dev: online when the driver can;
// otherwise offline, which it can do only while the volume is staged
// and published nowhere (its one mount is unmounted and mounted again).
func (d *Driver) growFilesystem(ctx context.Context, dev string, mountFlags []string) error {
	if d.onlineResize {
		mounts, err := d.mountsOf(dev)
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		if len(mounts) > 0 {
			if err := growOnline(d.exec, dev, mounts[0]); err != nil {
				return status.Error(codes.Internal, err.Error())
			}
			return nil
		}
	}
	mounts, err := d.mountsOf(dev)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	if len(mounts) > 1 {
		return status.Errorf(codes.FailedPrecondition, "%s is mounted at %v: growing a mounted ext4 needs CAP_SYS_RESOURCE, which the driver lacks; it grows once the volume is published nowhere (or when it is staged next)", dev, mounts)
	}
	if len(mounts) == 1 {
		if err := d.mounter.Unmount(mounts[0]); err != nil {
			return status.Errorf(codes.Internal, "unmount %s to grow it: %v", mounts[0], err)
		}
	}
	growErr := growOffline(ctx, d.exec, dev)
	if len(mounts) == 1 {
		if err := d.mounter.Mount(dev, mounts[0], "ext4", mountFlags); err != nil {
			return status.Errorf(codes.Internal, "mount %s at %s again after growing it: %v", dev, mounts[0], errors.Join(growErr, err))
		}
	}
	if growErr != nil {
		return status.Error(codes.Internal, growErr.Error())
	}
	return nil
}

// mountsOf lists the paths dev is mounted at, bind mounts included.
func (d *Driver) mountsOf(dev string) ([]string, error) {
	mounts, err := d.mounter.List()
	if err != nil {
		return nil, fmt.Errorf("read the mount table: %w", err)
	}
	var paths []string
	for _, m := range mounts {
		if m.Device == dev {
			paths = append(paths, m.Path)
		}
	}
	return paths, nil
}

// mountedDevice is the device mounted at path per the node's mount table,
// "" if nothing is.
func (d *Driver) mountedDevice(path string) (string, error) {
	mounts, err := d.mounter.List()
	if err != nil {
		return "", fmt.Errorf("read the mount table: %w", err)
	}
	clean := filepath.Clean(path)
	device := ""
	for _, m := range mounts {
		if m.Path == clean {
			device = m.Device // the last mount at a path is the one seen
		}
	}
	return device, nil
}

// unmount unmounts path wherever it is mounted (repeatedly, for stacked
// mounts) and, when remove is set, removes it, directory or file.
func (d *Driver) unmount(path string, remove bool) error {
	for {
		device, err := d.mountedDevice(path)
		if err != nil {
			return err
		}
		if device == "" {
			break
		}
		if err := d.mounter.Unmount(path); err != nil {
			return err
		}
	}
	if !remove {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// makeFile creates path as an empty file to bind a block device onto.
func makeFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o640)
	if err != nil {
		return err
	}
	return f.Close()
}
