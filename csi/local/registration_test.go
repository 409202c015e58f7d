package local_test

import (
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	registerv1 "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/fedlet/fedlet/csi/local"
)

// Standalone, the driver announces itself on the kubelet's registration
// directory as node-driver-registrar would: the kubelet (or fedlet's
// watcher) learns its name and endpoint there, and reaches it at that
// endpoint.
func TestRegistersWithTheKubelet(t *testing.T) {
	dir, stateDir := nodeDir(t)
	startDriver(t, dir, stateDir)

	reg := registerv1.NewRegistrationClient(dial(t, "unix://"+filepath.Join(dir, "plugins_registry", local.DriverName+"-reg.sock")))
	info, err := reg.GetInfo(t.Context(), &registerv1.InfoRequest{}, grpc.WaitForReady(true)) // its socket may come just after the CSI one
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if info.GetType() != registerv1.CSIPlugin || info.GetName() != local.DriverName || info.GetEndpoint() != filepath.Join(dir, "csi.sock") {
		t.Fatalf("GetInfo = %v; want the CSI plugin %s at %s", info, local.DriverName, filepath.Join(dir, "csi.sock"))
	}
	got, err := csi.NewIdentityClient(dial(t, "unix://"+info.GetEndpoint())).GetPluginInfo(t.Context(), &csi.GetPluginInfoRequest{})
	if err != nil || got.GetName() != local.DriverName {
		t.Errorf("GetPluginInfo at the registered endpoint = %v, %v", got, err)
	}
	if _, err := reg.NotifyRegistrationStatus(t.Context(), &registerv1.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Errorf("NotifyRegistrationStatus: %v", err)
	}
}
