package local

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	mib = 1 << 20
	// minCapacity is the smallest volume: room for ext4's journal and a
	// little data.
	minCapacity = 16 * mib
	// defaultCapacity is a volume's size when the request names none.
	defaultCapacity = 1 << 30
)

var errNotConfigured = status.Error(codes.FailedPrecondition, "the driver is not configured yet: no node and state directory")

// ControllerGetCapabilities declares what the controller serves: no attach
// step (a volume is on its node already), no snapshots or clones.
func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, c := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_GET_CAPACITY,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
		csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	} {
		caps = append(caps, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
			Rpc: &csi.ControllerServiceCapability_RPC{Type: c},
		}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// CreateVolume makes a volume of the requested capacity on this node. A
// repeated request for the same name returns the volume made the first
// time when its capacity still fits the request, AlreadyExists otherwise.
func (d *Driver) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.GetVolumeContentSource() != nil {
		return nil, status.Error(codes.InvalidArgument, "volume_content_source: the driver makes neither clones nor volumes from snapshots")
	}
	capacity, err := capacityFor(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	store, err := d.configured()
	if err != nil {
		return nil, err
	}
	if !d.reachable(req.GetAccessibilityRequirements()) {
		return nil, status.Errorf(codes.ResourceExhausted, "accessibility_requirements: the volume can only be on node %s", d.cfg.NodeID)
	}

	v, err := store.get(volumeID(req.GetName()))
	switch {
	case err == nil:
		if !fits(v.Capacity, req.GetCapacityRange()) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with capacity %d, outside the range requested", req.GetName(), v.Capacity)
		}
	case errors.Is(err, os.ErrNotExist):
		available, err := store.available()
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		if capacity > available {
			return nil, status.Errorf(codes.ResourceExhausted, "volume %s: %d bytes requested, %d available on node %s", req.GetName(), capacity, available, d.cfg.NodeID)
		}
		if v, err = store.create(req.GetName(), capacity); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	default:
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csi.CreateVolumeResponse{Volume: d.csiVolume(v)}, nil
}

// DeleteVolume removes a volume and its backing file. One that does not
// exist is deleted already; one still staged is refused.
func (d *Driver) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	store, err := d.configured()
	if err != nil {
		return nil, err
	}
	if !volumeIDPattern.MatchString(req.GetVolumeId()) {
		return &csi.DeleteVolumeResponse{}, nil // not one of ours: never existed
	}
	devices, err := loopDevices(ctx, d.exec, store.imagePath(req.GetVolumeId()))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if len(devices) > 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is staged (loop device %s): unstage it first", req.GetVolumeId(), devices[0])
	}
	if err := store.remove(req.GetVolumeId()); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// ControllerExpandVolume grows a volume's backing file; the node then
// grows its loop device and filesystem (NodeExpandVolume).
func (d *Driver) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	capacity, err := capacityFor(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.volume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if capacity > v.Capacity {
		available, err := d.volumes.available()
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		if capacity-v.Capacity > available {
			return nil, status.Errorf(codes.ResourceExhausted, "volume %s: %d more bytes requested, %d available", v.ID, capacity-v.Capacity, available)
		}
		if err := d.volumes.expand(v, capacity); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: v.Capacity, NodeExpansionRequired: true}, nil
}

// GetCapacity answers the space new volumes may take on this node: none
// for a topology that is not this node's or capabilities it cannot serve.
func (d *Driver) GetCapacity(ctx context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	store, err := d.configured()
	if err != nil {
		return nil, err
	}
	if seg := req.GetAccessibleTopology().GetSegments(); len(seg) > 0 && !d.isThisNode(seg) {
		return &csi.GetCapacityResponse{}, nil
	}
	if len(req.GetVolumeCapabilities()) > 0 && checkCapabilities(req.GetVolumeCapabilities()) != nil {
		return &csi.GetCapacityResponse{}, nil
	}
	available, err := store.available()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csi.GetCapacityResponse{AvailableCapacity: available, MinimumVolumeSize: wrapperspb.Int64(minCapacity)}, nil
}

// ListVolumes lists the volumes in the order of their IDs. A page's
// next_token is the ID of its last volume, so that a token stays valid
// when volumes are created or deleted between pages.
func (d *Driver) ListVolumes(ctx context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Error(codes.InvalidArgument, "max_entries: must not be negative")
	}
	if tok := req.GetStartingToken(); tok != "" && !volumeIDPattern.MatchString(tok) {
		return nil, status.Errorf(codes.Aborted, "starting_token %q: not a token ListVolumes gave", tok)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	store, err := d.configured()
	if err != nil {
		return nil, err
	}
	ids, err := store.list()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &csi.ListVolumesResponse{}
	for _, id := range ids {
		if id <= req.GetStartingToken() {
			continue
		}
		if req.GetMaxEntries() > 0 && len(resp.Entries) == int(req.GetMaxEntries()) {
			resp.NextToken = resp.Entries[len(resp.Entries)-1].GetVolume().GetVolumeId()
			break
		}
		v, err := store.get(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{Volume: d.csiVolume(v)})
	}
	return resp, nil
}

// ValidateVolumeCapabilities confirms the capabilities the driver serves.
func (d *Driver) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.volume(req.GetVolumeId()); err != nil {
		return nil, err
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// volume returns the volume id, NotFound if it does not exist; the caller
// holds d.mu.
func (d *Driver) volume(id string) (*volume, error) {
	store, err := d.configured()
	if err != nil {
		return nil, err
	}
	v, err := store.get(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist", id)
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return v, nil
}

func (d *Driver) csiVolume(v *volume) *csi.Volume {
	return &csi.Volume{
		VolumeId:           v.ID,
		CapacityBytes:      v.Capacity,
		AccessibleTopology: []*csi.Topology{d.topology()},
	}
}

func (d *Driver) topology() *csi.Topology {
	return &csi.Topology{Segments: map[string]string{TopologyKey: d.cfg.NodeID}}
}

func (d *Driver) isThisNode(segments map[string]string) bool {
	node, ok := segments[TopologyKey]
	return ok && node == d.cfg.NodeID
}

// reachable says whether a volume on this node meets the requirements:
// this node is among the requisite topologies, if any are given (else
// among the preferred ones, if any are given).
func (d *Driver) reachable(req *csi.TopologyRequirement) bool {
	topologies := req.GetRequisite()
	if len(topologies) == 0 {
		topologies = req.GetPreferred()
	}
	if len(topologies) == 0 {
		return true
	}
	for _, t := range topologies {
		if d.isThisNode(t.GetSegments()) {
			return true
		}
	}
	return false
}

// capacityFor is the size of a volume made for the range r: its required
// bytes rounded up to a MiB, at least minCapacity, defaultCapacity when
// nothing is required; OutOfRange if the limit rules that out.
func capacityFor(r *csi.CapacityRange) (int64, error) {
	required, limit := r.GetRequiredBytes(), r.GetLimitBytes()
	if required < 0 || limit < 0 {
		return 0, status.Error(codes.InvalidArgument, "capacity_range: bytes must not be negative")
	}
	if limit > 0 && required > limit {
		return 0, status.Errorf(codes.InvalidArgument, "capacity_range: required %d exceeds the limit %d", required, limit)
	}
	size := (required + mib - 1) / mib * mib
	if required == 0 {
		size = defaultCapacity
		if limit > 0 && limit < size {
			size = limit / mib * mib
		}
	}
	size = max(size, minCapacity)
	if limit > 0 && size > limit {
		return 0, status.Errorf(codes.OutOfRange, "capacity_range: volumes are whole MiB of at least %d bytes; the limit %d allows none", minCapacity, limit)
	}
	return size, nil
}

// fits says whether capacity meets the range r.
func fits(capacity int64, r *csi.CapacityRange) bool {
	return capacity >= r.GetRequiredBytes() && (r.GetLimitBytes() == 0 || capacity <= r.GetLimitBytes())
}

// checkCapabilities says why the driver cannot serve caps: it serves one
// node's volumes (single-node access modes), as ext4 filesystems or raw
// block devices.
func checkCapabilities(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return errors.New("volume_capabilities: must be set")
	}
	for i, c := range caps {
		switch c.GetAccessMode().GetMode() {
		case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY:
		case csi.VolumeCapability_AccessMode_UNKNOWN:
			return fmt.Errorf("volume_capabilities[%d].access_mode: must be set", i)
		default:
			return fmt.Errorf("volume_capabilities[%d].access_mode: %s is not served: volumes are on one node", i, c.GetAccessMode().GetMode())
		}
		switch {
		case c.GetBlock() != nil:
		case c.GetMount() != nil:
			if fs := c.GetMount().GetFsType(); fs != "" && fs != "ext4" {
				return fmt.Errorf("volume_capabilities[%d].mount.fs_type: %q is not served, only ext4", i, fs)
			}
		default:
			return fmt.Errorf("volume_capabilities[%d].access_type: must be block or mount", i)
		}
	}
	return nil
}
