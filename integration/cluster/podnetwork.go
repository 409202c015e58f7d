package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/vishvananda/netlink"

	cniplugin "github.com/fedlet/fedlet/cni/plugin"
	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

// PodNetwork is where a cluster's pods live on this machine. Clusters that
// share the machine (a hub and its members) each need their own: the
// address ranges must not overlap, and each cluster's teardown removes its
// own bridge and releases its own network's rules only.
type PodNetwork struct {
	// CIDR is the range of pod addresses: the controller manager's
	// --cluster-cidr, kube-proxy's clusterCIDR and the network plugin's
	// sharedSubnet. Defaults to ClusterCIDR.
	CIDR string
	// Bridge is the Linux bridge every node of the cluster attaches its
	// pods to. Defaults to "fedlet0".
	Bridge string
	// Name is the CNI network's name. It is the scope of CNI GC, which
	// removes whatever of the network is not among the attachments its
	// caller keeps (the CNI plugins' nftables masquerade rules are found
	// by it), so clusters on one machine must not share one. Defaults to
	// "fedlet" with the default bridge, else to the bridge's name.
	Name string
}

// DefaultPodNetwork is the pod network of a cluster alone on its machine.
func DefaultPodNetwork() PodNetwork {
	return PodNetwork{CIDR: ClusterCIDR, Bridge: defaultBridge, Name: cniplugin.DefaultNetworkName}
}

// defaultBridge is the Linux bridge of the default pod network.
const defaultBridge = "fedlet0"

func (n PodNetwork) withDefaults() (PodNetwork, error) {
	d := DefaultPodNetwork()
	if n.CIDR == "" {
		n.CIDR = d.CIDR
	}
	if n.Bridge == "" {
		n.Bridge = d.Bridge
	}
	if n.Name == "" {
		n.Name = n.Bridge
		if n.Bridge == d.Bridge {
			n.Name = d.Name
		}
	}
	ip, cidr, err := net.ParseCIDR(n.CIDR)
	if err != nil || ip.To4() == nil || !ip.Equal(cidr.IP) {
		return n, fmt.Errorf("pod network CIDR %q: want an IPv4 network such as %s", n.CIDR, ClusterCIDR)
	}
	if ones, _ := cidr.Mask.Size(); ones > NodeCIDRMaskSize {
		return n, fmt.Errorf("pod network CIDR %s: smaller than one node's /%d", n.CIDR, NodeCIDRMaskSize)
	}
	// IFNAMSIZ less the terminating NUL.
	if len(n.Bridge) > 15 {
		return n, fmt.Errorf("pod network bridge %q: longer than 15 characters", n.Bridge)
	}
	return n, nil
}

// memberPodNetwork is the pod network of the i-th member cluster (from 1):
// 10.(244+i).0.0/16 on the bridge fedlet<i>, beside the hub's
// 10.244.0.0/16 on fedlet0.
func memberPodNetwork(i int) PodNetwork {
	return PodNetwork{CIDR: fmt.Sprintf("10.%d.0.0/16", 244+i), Bridge: fmt.Sprintf("fedlet%d", i)}
}

// releasePodNetwork frees what the pods' network attachments hold on the
// machine (addresses, NAT and host-port rules) and removes the cluster's
// pod bridge, and nothing of another cluster's network. It runs once the
// pods' containers are gone and before their network namespaces are, which
// the CNI plugins need to find their rules: the agent, stopped first,
// leaves its pods running and attached, as it must for a restart to adopt
// them. The network plugin's own code does it, in process, with no
// attachment left valid.
func (c *Cluster) releasePodNetwork(ctx context.Context) error {
	cfg, err := json.Marshal(c.networkPluginConfig())
	if err != nil {
		return err
	}
	srv := cniplugin.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var errs []error
	if _, err := srv.Configure(ctx, &networkv1.ConfigureRequest{Config: cfg, Nodes: []string{c.opts.NodeName}}); err != nil {
		errs = append(errs, fmt.Errorf("configure the network plugin: %w", err))
	} else if _, err := srv.GC(ctx, &networkv1.GCRequest{Node: c.opts.NodeName}); err != nil {
		errs = append(errs, fmt.Errorf("release pod networks: %w", err))
	}
	bridge := c.opts.PodNetwork.Bridge
	errs = append(errs, removePortmapChains())
	if link, err := netlink.LinkByName(bridge); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("remove bridge %s: %w", bridge, err))
		}
	} else if !errors.As(err, new(netlink.LinkNotFoundError)) {
		errs = append(errs, fmt.Errorf("find bridge %s: %w", bridge, err))
	}
	return errors.Join(errs...)
}
