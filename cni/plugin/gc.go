package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
	"github.com/fedlet/fedlet/plugins/sdk"
)

// GC removes every attachment of the node that is not in the valid list.
// It holds every other call off while it runs, so that it never races an
// Add of an attachment the list names.
//
//  1. Each attachment record that is not valid is deleted with CNI DEL and
//     the conflist it was set up with: this covers an ADD that a crash cut
//     short before libcni cached its result (kill -9 of the agent or the
//     plugin), which no cache knows of.
//  2. Each attachment in the node's libcni cache that is not valid is
//     deleted the same way, as the cache says it was set up.
//  3. libcni's GCNetworkList runs with the current conflist: for
//     cniVersion 1.1.0 and later it asks each CNI plugin to release what
//     it holds for attachments that are not valid (CNI GC). The valid list
//     it gets also names the attachments of the other nodes this process
//     serves, so nodes that share a network keep each other's.
//
// A DEL that fails leaves its record for the next GC; GC then fails with
// the attachments it could not remove.
func (s *Server) GC(ctx context.Context, req *networkv1.GCRequest) (*networkv1.GCResponse, error) {
	n, cfg, err := s.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	valid := map[attachmentKey]bool{}
	for i, a := range req.GetValidAttachments() {
		key, err := attachmentOf(a)
		if err != nil {
			return nil, sdk.InvalidArgument(fmt.Sprintf("valid_attachments[%d]", i), status.Convert(err).Message())
		}
		valid[key] = true
	}
	log := s.logger().With("node", n.name)

	s.gc.Lock()
	defer s.gc.Unlock()

	resp := &networkv1.GCResponse{}
	var errs []error
	handled := map[attachmentKey]bool{}
	remove := func(rec *record) {
		key := rec.key()
		handled[key] = true
		if valid[key] {
			return
		}
		if err := s.del(ctx, n, rec, ""); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", key, status.Convert(err).Message()))
			return
		}
		log.Info("stale attachment removed", "container", key.containerID, "ifname", key.ifname, "netns", rec.NetNS)
		resp.Removed = append(resp.Removed, &networkv1.Attachment{ContainerId: key.containerID, Ifname: key.ifname})
	}

	recs, err := n.records.list()
	if err != nil {
		errs = append(errs, err)
	}
	for _, rec := range recs {
		remove(rec)
	}
	for _, rec := range cachedRecords(n) {
		if !handled[rec.key()] {
			remove(rec)
		}
	}

	list, prob := loadConflist(cfg)
	if prob == nil {
		prob = findBinaries(list, cfg.BinDirs)
	}
	if prob != nil {
		log.Debug("CNI GC skipped: the network is not ready", "reason", prob.reason)
	} else if err := n.cni.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: s.gcValid(n.name, valid)}); err != nil {
		errs = append(errs, fmt.Errorf("CNI GC of network %q: %w", list.Name, err))
	}

	if len(errs) > 0 {
		return nil, status.Errorf(codes.Internal, "GC of node %s removed %d attachments but failed: %v",
			n.name, len(resp.Removed), errors.Join(errs...))
	}
	return resp, nil
}

// gcValid is what CNI GC must keep: the node's valid attachments, and every
// attachment of the other nodes (their records and cache entries).
func (s *Server) gcValid(node string, valid map[attachmentKey]bool) []types.GCAttachment {
	keep := map[attachmentKey]bool{}
	for k := range valid {
		keep[k] = true
	}
	for _, other := range s.otherNodes(node) {
		recs, _ := other.records.list()
		for _, rec := range append(recs, cachedRecords(other)...) {
			keep[rec.key()] = true
		}
	}
	out := make([]types.GCAttachment, 0, len(keep))
	for k := range keep {
		out = append(out, types.GCAttachment{ContainerID: k.containerID, IfName: k.ifname})
	}
	return out
}

// cachedRecords returns every attachment in the node's libcni cache.
func cachedRecords(n *node) []*record {
	cached, err := n.cni.GetCachedAttachments("")
	if err != nil {
		return nil
	}
	out := make([]*record, 0, len(cached))
	for _, a := range cached {
		out = append(out, recordOf(a))
	}
	return out
}
