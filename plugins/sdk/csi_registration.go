package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	registerv1 "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// CSIVersions are the CSI specification versions a driver announces to a
// kubelet: the kubelet speaks CSI 1.x.
var CSIVersions = []string{"1.0.0"}

// ServeKubeletRegistration announces a CSI driver to the kubelet (or to a
// fedlet agent) beside which it runs, as node-driver-registrar does for
// drivers that do not: the kubelet's plugin-registration API
// (pluginregistration v1) on <dir>/<driverName>-reg.sock, dir being the
// kubelet's registration directory (/var/lib/kubelet/plugins_registry).
// GetInfo answers that the socket is a CSI plugin, its name, the path of
// its CSI endpoint and CSIVersions. The kubelet's verdict
// (NotifyRegistrationStatus) is logged. It returns when ctx ends, removing
// the socket, or when the server fails.
func ServeKubeletRegistration(ctx context.Context, dir, driverName, endpoint string) error {
	path, err := UnixEndpointPath(endpoint)
	if err != nil {
		return err
	}
	socket := filepath.Join(dir, driverName+"-reg.sock")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("register CSI driver %s: %w", driverName, err)
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("register CSI driver %s: remove the stale socket: %w", driverName, err)
	}
	lis, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("register CSI driver %s: %w", driverName, err)
	}
	srv := grpc.NewServer()
	registerv1.RegisterRegistrationServer(srv, &registration{name: driverName, endpoint: path})
	if err := serveUntil(ctx, srv, lis); err != nil {
		return fmt.Errorf("register CSI driver %s on %s: %w", driverName, socket, err)
	}
	return nil
}

// registration answers the kubelet's plugin watcher.
type registration struct {
	registerv1.UnimplementedRegistrationServer
	name, endpoint string
}

func (r *registration) GetInfo(context.Context, *registerv1.InfoRequest) (*registerv1.PluginInfo, error) {
	return &registerv1.PluginInfo{
		Type:              registerv1.CSIPlugin,
		Name:              r.name,
		Endpoint:          r.endpoint,
		SupportedVersions: CSIVersions,
	}, nil
}

func (r *registration) NotifyRegistrationStatus(_ context.Context, st *registerv1.RegistrationStatus) (*registerv1.RegistrationStatusResponse, error) {
	if st.GetPluginRegistered() {
		slog.Info("registered with the kubelet", "driver", r.name)
	} else {
		slog.Error("the kubelet refused the registration", "driver", r.name, "err", st.GetError())
	}
	return &registerv1.RegistrationStatusResponse{}, nil
}
