package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/vishvananda/netlink"

	cniplugin "github.com/fedlet/fedlet/cni/plugin"
	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

// releasePodNetwork frees what the pods' network attachments hold on the
// machine (addresses, NAT and host-port rules) and removes the pod bridge.
// It runs once the pods' containers are gone and before their network
// namespaces are, which the CNI plugins need to find their rules: the
// agent, stopped first, leaves its pods running and attached, as it must
// for a restart to adopt them. The network plugin's own code does it, in
// process, with no attachment left valid.
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
	if link, err := netlink.LinkByName(podBridge); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("remove bridge %s: %w", podBridge, err))
		}
	} else if !errors.As(err, new(netlink.LinkNotFoundError)) {
		errs = append(errs, fmt.Errorf("find bridge %s: %w", podBridge, err))
	}
	return errors.Join(errs...)
}
