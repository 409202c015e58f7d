package plugin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/utils"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// cleanupTimeout bounds a DEL that undoes a failed ADD: it runs even when
// the caller's context has ended, since that is often why the ADD failed.
const cleanupTimeout = time.Minute

// Add sets the attachment up with CNI ADD, or returns the result of the one
// that exists. An existing attachment is checked first (CNI CHECK, when the
// conflist's version has it): a broken one, or one in another network
// namespace, is deleted and set up again. A record of the attachment is
// written before ADD; when ADD fails, DEL undoes whatever it did and the
// record goes, so nothing half set up is left behind.
func (s *Server) Add(ctx context.Context, req *networkv1.AddRequest) (*networkv1.Result, error) {
	n, cfg, err := s.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	key, err := attachmentOf(req.GetAttachment())
	if err != nil {
		return nil, err
	}
	log := s.logger().With("node", n.name, "pod", podName(req.GetPod()), "container", key.containerID, "ifname", key.ifname)
	if _, err := os.Stat(req.GetNetnsPath()); err != nil {
		return nil, sdk.InvalidArgument("netns_path", fmt.Sprintf("%s: %v", req.GetNetnsPath(), err))
	}
	list, prob := loadConflist(cfg)
	if prob == nil {
		prob = findBinaries(list, cfg.BinDirs)
	}
	if prob != nil {
		return nil, status.Error(codes.FailedPrecondition, prob.message)
	}
	caps, err := capabilityArgs(req, list, cfg.SharedSubnet)
	if err != nil {
		return nil, err
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    key.containerID,
		NetNS:          req.GetNetnsPath(),
		IfName:         key.ifname,
		Args:           cniArgs(key, req.GetPod()),
		CapabilityArgs: caps,
	}

	s.gc.RLock()
	defer s.gc.RUnlock()
	defer s.attachLocks.lock(n.name + "/" + key.String())()

	if res, ok := s.existing(ctx, n, list, rt, log); ok {
		return res, nil
	}
	rec := &record{
		ContainerID: rt.ContainerID, IfName: rt.IfName, NetNS: rt.NetNS,
		Args: rt.Args, CapabilityArgs: rt.CapabilityArgs, Conflist: list.Bytes,
	}
	if err := n.records.put(rec); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	start := time.Now()
	res, err := n.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		log.Warn("CNI ADD failed; undoing it", "network", list.Name, "error", err)
		s.undo(ctx, n, rec, log)
		return nil, cniStatus(fmt.Sprintf("CNI ADD of network %q", list.Name), err)
	}
	out, err := toProto(res)
	if err != nil {
		s.undo(ctx, n, rec, log)
		return nil, status.Errorf(codes.Internal, "CNI ADD of network %q: %v", list.Name, err)
	}
	log.Info("pod attached", "network", list.Name, "ips", addresses(out), "took", time.Since(start).Round(time.Millisecond).String())
	return out, nil
}

// existing returns the result of the attachment when it is set up as rt
// asks and passes CHECK. Otherwise it removes whatever there is of it (an
// attachment in another namespace, a broken one, or an ADD that a crash cut
// short) so that ADD starts from nothing.
func (s *Server) existing(ctx context.Context, n *node, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf, log *slog.Logger) (*networkv1.Result, bool) {
	key := attachmentKey{rt.ContainerID, rt.IfName}
	rec, err := n.records.get(key)
	if err != nil {
		log.Warn("attachment record unreadable; setting the attachment up again", "error", err)
	}
	cached, err := n.cni.GetNetworkListCachedResult(list, rt)
	if err != nil {
		log.Warn("cached CNI result unreadable; setting the attachment up again", "error", err)
	}
	if rec == nil {
		rec = cachedRecord(n, key)
	}
	if rec == nil && cached == nil {
		return nil, false
	}
	if cached != nil && rec != nil && rec.NetNS == rt.NetNS {
		err := n.cni.CheckNetworkList(ctx, list, rt)
		if err == nil || errors.Is(err, libcni.ErrorCheckNotSupp) {
			if out, err := toProto(cached); err == nil {
				log.Debug("pod already attached", "network", list.Name, "ips", addresses(out))
				return out, true
			}
		}
		log.Warn("attachment fails CNI CHECK; setting it up again", "network", list.Name, "error", err)
	} else {
		log.Info("removing an earlier, unfinished or different attachment before ADD", "network", list.Name)
	}
	if rec == nil {
		// A cached result under this conflist's name, but neither a record
		// nor a cache entry that says how it was set up: DEL it as asked now.
		rec = &record{ContainerID: rt.ContainerID, IfName: rt.IfName, NetNS: rt.NetNS, Args: rt.Args, CapabilityArgs: rt.CapabilityArgs, Conflist: list.Bytes}
	}
	if err := s.del(ctx, n, rec, ""); err != nil {
		log.Warn("removing the earlier attachment failed; ADD may fail too", "error", err)
	}
	return nil, false
}

// undo deletes what a failed ADD may have set up, and its record once the
// DEL succeeded; a record whose DEL failed stays for GC to retry.
func (s *Server) undo(ctx context.Context, n *node, rec *record, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := s.del(ctx, n, rec, ""); err != nil {
		log.Error("undoing a failed ADD failed; GC will retry", "error", err)
	}
}

// Del removes the attachment with CNI DEL, using what it was set up with
// (its record, else libcni's cache): the conflist of its ADD, its CNI_ARGS
// and its port mappings. The request's network namespace, when given,
// replaces the recorded one. An attachment the node has no trace of is
// already gone: Del succeeds and runs nothing.
func (s *Server) Del(ctx context.Context, req *networkv1.DelRequest) (*networkv1.DelResponse, error) {
	n, _, err := s.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	key, err := attachmentOf(req.GetAttachment())
	if err != nil {
		return nil, err
	}
	log := s.logger().With("node", n.name, "pod", podName(req.GetPod()), "container", key.containerID, "ifname", key.ifname)

	s.gc.RLock()
	defer s.gc.RUnlock()
	defer s.attachLocks.lock(n.name + "/" + key.String())()

	rec, err := n.records.get(key)
	if err != nil {
		log.Warn("attachment record unreadable; using libcni's cache", "error", err)
	}
	if rec == nil {
		rec = cachedRecord(n, key)
	}
	if rec == nil {
		log.Debug("no such attachment; nothing to delete")
		return &networkv1.DelResponse{}, nil
	}
	if err := s.del(ctx, n, rec, req.GetNetnsPath()); err != nil {
		return nil, err
	}
	log.Info("pod detached")
	return &networkv1.DelResponse{}, nil
}

// del runs CNI DEL for rec (in netns when given, else in its recorded one)
// with the conflist it was set up with, then forgets it: libcni's cache
// entry goes with the DEL, the record after it.
func (s *Server) del(ctx context.Context, n *node, rec *record, netns string) error {
	list, err := parseConflist(rec.Conflist)
	if err != nil {
		return status.Errorf(codes.Internal, "attachment %s: its recorded conflist: %v", rec.key(), err)
	}
	if prob := findBinaries(list, n.cni.Path); prob != nil {
		return status.Error(codes.FailedPrecondition, prob.message)
	}
	rt := rec.runtimeConf()
	if netns != "" {
		rt.NetNS = netns
	}
	if err := n.cni.DelNetworkList(ctx, list, rt); err != nil {
		return cniStatus(fmt.Sprintf("CNI DEL of network %q", list.Name), err)
	}
	if err := n.records.remove(rec.key()); err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return nil
}

// Check runs CNI CHECK on the attachment with what it was set up with. An
// attachment the node does not know fails with NotFound; a conflist whose
// version has no CHECK passes.
func (s *Server) Check(ctx context.Context, req *networkv1.CheckRequest) (*networkv1.CheckResponse, error) {
	n, cfg, err := s.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	key, err := attachmentOf(req.GetAttachment())
	if err != nil {
		return nil, err
	}
	s.gc.RLock()
	defer s.gc.RUnlock()
	defer s.attachLocks.lock(n.name + "/" + key.String())()

	rec := cachedRecord(n, key)
	if rec == nil {
		return nil, status.Errorf(codes.NotFound, "attachment %s is not set up on node %s", key, n.name)
	}
	list, err := parseConflist(rec.Conflist)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "attachment %s: its cached conflist: %v", key, err)
	}
	if prob := findBinaries(list, cfg.BinDirs); prob != nil {
		return nil, status.Error(codes.FailedPrecondition, prob.message)
	}
	rt := rec.runtimeConf()
	if req.GetNetnsPath() != "" {
		rt.NetNS = req.GetNetnsPath()
	}
	if err := n.cni.CheckNetworkList(ctx, list, rt); err != nil && !errors.Is(err, libcni.ErrorCheckNotSupp) {
		return nil, cniStatus(fmt.Sprintf("CNI CHECK of network %q", list.Name), err)
	}
	return &networkv1.CheckResponse{}, nil
}

// cachedRecord returns the attachment as libcni's cache knows it (set up
// completely), or nil.
func cachedRecord(n *node, key attachmentKey) *record {
	cached, err := n.cni.GetCachedAttachments(key.containerID)
	if err != nil {
		return nil
	}
	for _, a := range cached {
		if a.ContainerID == key.containerID && a.IfName == key.ifname {
			return recordOf(a)
		}
	}
	return nil
}

// recordOf is a libcni cache entry as a record.
func recordOf(a *libcni.NetworkAttachment) *record {
	return &record{
		ContainerID: a.ContainerID, IfName: a.IfName, NetNS: a.NetNS,
		Args: a.CniArgs, CapabilityArgs: a.CapabilityArgs, Conflist: a.Config,
	}
}

// attachmentOf checks an attachment's identity as libcni will.
func attachmentOf(a *networkv1.Attachment) (attachmentKey, error) {
	if e := utils.ValidateContainerID(a.GetContainerId()); e != nil {
		return attachmentKey{}, sdk.InvalidArgument("attachment.container_id", fmt.Sprintf("%q: %v", a.GetContainerId(), e))
	}
	if e := utils.ValidateInterfaceName(a.GetIfname()); e != nil {
		return attachmentKey{}, sdk.InvalidArgument("attachment.ifname", fmt.Sprintf("%q: %v", a.GetIfname(), e))
	}
	return attachmentKey{a.GetContainerId(), a.GetIfname()}, nil
}

// cniArgs are the CNI_ARGS Kubernetes runtimes pass, so that plugins that
// look at the pod (and those that ignore unknown keys) work as under the
// kubelet.
func cniArgs(key attachmentKey, pod *networkv1.PodRef) [][2]string {
	return [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", pod.GetNamespace()},
		{"K8S_POD_NAME", pod.GetName()},
		{"K8S_POD_INFRA_CONTAINER_ID", key.containerID},
		{"K8S_POD_UID", pod.GetUid()},
	}
}

// capabilityArgs turns the request's runtime config into CNI capability
// arguments, each pod CIDR placed in sharedSubnet if set. Host ports on a
// network without a portMappings plugin are refused rather than silently
// not published.
func capabilityArgs(req *networkv1.AddRequest, list *libcni.NetworkConfigList, sharedSubnet string) (map[string]any, error) {
	caps := map[string]any{}
	if pms := req.GetPortMappings(); len(pms) > 0 {
		if !hasCapability(list, "portMappings") {
			return nil, sdk.InvalidArgument("port_mappings", fmt.Sprintf(
				"no plugin of CNI network %q has the portMappings capability, so host ports cannot be published", list.Name))
		}
		var out []map[string]any
		for i, pm := range pms {
			if pm.GetHostPort() <= 0 || pm.GetHostPort() > 65535 || pm.GetContainerPort() <= 0 || pm.GetContainerPort() > 65535 {
				return nil, sdk.InvalidArgument(fmt.Sprintf("port_mappings[%d]", i), fmt.Sprintf("ports %d -> %d out of range", pm.GetHostPort(), pm.GetContainerPort()))
			}
			proto := strings.ToLower(pm.GetProtocol())
			if proto == "" {
				proto = "tcp"
			}
			m := map[string]any{"hostPort": pm.GetHostPort(), "containerPort": pm.GetContainerPort(), "protocol": proto}
			if pm.GetHostIp() != "" {
				m["hostIP"] = pm.GetHostIp()
			}
			out = append(out, m)
		}
		caps["portMappings"] = out
	}
	if sets := req.GetIpRanges(); len(sets) > 0 {
		var out [][]map[string]string
		for i, set := range sets {
			var ranges []map[string]string
			for j, r := range set.GetRanges() {
				if r.GetSubnet() == "" {
					return nil, sdk.InvalidArgument(fmt.Sprintf("ip_ranges[%d].ranges[%d].subnet", i, j), "must be set")
				}
				m := map[string]string{"subnet": r.GetSubnet()}
				if sharedSubnet != "" {
					r = inSharedSubnet(r, sharedSubnet)
					m["subnet"] = r.GetSubnet()
				}
				for k, v := range map[string]string{"rangeStart": r.GetRangeStart(), "rangeEnd": r.GetRangeEnd(), "gateway": r.GetGateway()} {
					if v != "" {
						m[k] = v
					}
				}
				ranges = append(ranges, m)
			}
			out = append(out, ranges)
		}
		caps["ipRanges"] = out
	}
	return caps, nil
}

func hasCapability(list *libcni.NetworkConfigList, name string) bool {
	for _, p := range list.Plugins {
		if p.Network.Capabilities[name] {
			return true
		}
	}
	return false
}

func podName(pod *networkv1.PodRef) string {
	if pod.GetName() == "" {
		return pod.GetUid()
	}
	return pod.GetNamespace() + "/" + pod.GetName()
}

// inSharedSubnet turns a range whose subnet lies inside shared into a range
// of shared: its usable addresses become rangeStart..rangeEnd, and shared's
// first address the gateway (host-local never hands out the gateway).
// Other ranges are left as they are.
func inSharedSubnet(r *networkv1.IPRange, shared string) *networkv1.IPRange {
	_, sharedNet, err := net.ParseCIDR(shared)
	if err != nil {
		return r
	}
	_, own, err := net.ParseCIDR(r.GetSubnet())
	if err != nil || own.IP.To4() == nil || !sharedNet.Contains(own.IP) {
		return r
	}
	if ones, _ := own.Mask.Size(); ones < 1 || ones > 30 {
		return r
	}
	first := binary.BigEndian.Uint32(own.IP.To4())
	last := first | ^binary.BigEndian.Uint32(net.IP(own.Mask).To4())
	gateway := binary.BigEndian.Uint32(sharedNet.IP.To4()) + 1
	out := &networkv1.IPRange{
		Subnet:     sharedNet.String(),
		RangeStart: r.GetRangeStart(),
		RangeEnd:   r.GetRangeEnd(),
		Gateway:    uint32ToIP(gateway).String(),
	}
	if out.RangeStart == "" {
		out.RangeStart = uint32ToIP(first + 1).String()
	}
	if out.RangeEnd == "" {
		out.RangeEnd = uint32ToIP(last - 1).String()
	}
	return out
}

func uint32ToIP(v uint32) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, v)
	return ip
}
