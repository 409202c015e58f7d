// Command fedlet-csi-local is fedlet's shipped CSI driver (package
// github.com/fedlet/fedlet/csi/local): node-local volumes, sparse files
// formatted ext4 and loop-mounted, or raw loop devices.
//
// Launched by the agent it is a storage plugin (sdk.ServeCSI), configured
// through the base protocol. With --endpoint it serves the CSI services on
// a unix socket, as a CSI driver beside a plain kubelet does:
//
//	fedlet-csi-local --endpoint unix:///var/lib/kubelet/plugins/local.csi.fedlet.io/csi.sock \
//	    --node-id node-1 --state-dir /var/lib/fedlet-csi-local
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/fedlet/fedlet/csi/local"
	"github.com/fedlet/fedlet/plugins/sdk"
	"github.com/fedlet/fedlet/plugins/version"
)

func main() {
	endpoint := flag.String("endpoint", "", "serve CSI standalone on this unix socket (unix:///path/csi.sock); without it, run as a fedlet plugin")
	nodeID := flag.String("node-id", "", "the node's CSI ID (standalone; the host name when unset)")
	stateDir := flag.String("state-dir", "", "the directory of the volumes' backing files and records (standalone)")
	registrationDir := flag.String("registration-dir", "", "standalone: announce the driver to the kubelet on <dir>/"+local.DriverName+"-reg.sock (the kubelet's plugins_registry)")
	maxVolumes := flag.Int64("max-volumes", local.DefaultMaxVolumes, "the most volumes the node stages (standalone)")
	flag.Parse()

	if *endpoint == "" {
		d, err := local.New(version.Version, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fedlet-csi-local:", err)
			os.Exit(1)
		}
		sdk.ServeCSI(d, d, d, sdk.WithDescription(local.Description()), sdk.WithConfigure(d.ConfigureFromHost))
		return
	}

	if *nodeID == "" {
		host, err := os.Hostname()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fedlet-csi-local: --node-id unset and no host name:", err)
			os.Exit(2)
		}
		*nodeID = host
	}
	d, err := local.New(version.Version, &local.Config{NodeID: *nodeID, StateDir: *stateDir, MaxVolumes: *maxVolumes})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fedlet-csi-local:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	slog.Info("serving CSI", "driver", local.DriverName, "endpoint", *endpoint, "node", *nodeID, "state_dir", *stateDir)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sdk.ServeCSIEndpoint(ctx, *endpoint, d, d, d) })
	if *registrationDir != "" {
		g.Go(func() error { return sdk.ServeKubeletRegistration(ctx, *registrationDir, local.DriverName, *endpoint) })
	}
	if err := g.Wait(); err != nil {
		slog.Error("serve CSI", "endpoint", *endpoint, "err", err)
		os.Exit(1)
	}
}
