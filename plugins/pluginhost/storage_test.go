package pluginhost

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func startTestStorage(t *testing.T, h *Host) *Storage {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := h.StartStorage(ctx, PluginSpec{Name: "csi", Plugin: testCSIName, Nodes: []string{"node-a"}})
	if err != nil {
		cancel()
		t.Fatalf("StartStorage: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.Done():
		case <-time.After(time.Minute):
			t.Error("storage plugin did not stop within a minute of its context ending")
		}
	})
	return s
}

// csiPID calls Identity.GetPluginInfo through the plugin's client and
// returns the process ID its manifest gives.
func csiPID(t *testing.T, s *Storage) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := s.Client().Identity.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil {
		t.Fatalf("GetPluginInfo: %v", err)
	}
	if info.GetName() != "testcsi.fedlet.io" || info.GetVendorVersion() != "0.0.3" {
		t.Errorf("GetPluginInfo = %v; want testcsi.fedlet.io 0.0.3", info)
	}
	pid, err := strconv.Atoi(info.GetManifest()["pid"])
	if err != nil {
		t.Fatalf("GetPluginInfo manifest %v: no pid: %v", info.GetManifest(), err)
	}
	return pid
}

// checkNodeInfo calls Node.NodeGetInfo through the plugin's client: the
// node it answers is the one the base Configure gave.
func checkNodeInfo(t *testing.T, s *Storage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := s.Client().Node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		t.Fatalf("NodeGetInfo: %v", err)
	}
	if info.GetNodeId() != "node-a" || info.GetMaxVolumesPerNode() != 7 ||
		info.GetAccessibleTopology().GetSegments()["testcsi.fedlet.io/node"] != "node-a" {
		t.Errorf("NodeGetInfo = %v; want node-a, 7 volumes, topology testcsi.fedlet.io/node=node-a", info)
	}
}

// A CSI driver served by sdk.ServeCSI runs under the host as a plugin of
// the storage family: described from its Identity service, configured
// through the base protocol, its CSI services reached through the
// family's client, and restarted after kill -9 like any other plugin.
func TestStorageStartCallAndRestart(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	s := startTestStorage(t, h)

	d := s.Describe()
	if d.GetName() != "testcsi.fedlet.io" || d.GetVersion() != "0.0.3" || d.GetFamily() != "storage" {
		t.Errorf("Describe() = %v; want testcsi.fedlet.io 0.0.3 of family storage", d)
	}
	if !s.HasCapability("VOLUME_ACCESSIBILITY_CONSTRAINTS") || s.HasCapability("CONTROLLER_SERVICE") {
		t.Errorf("capabilities %v; want VOLUME_ACCESSIBILITY_CONSTRAINTS and not CONTROLLER_SERVICE", d.GetCapabilities())
	}
	oldPID := csiPID(t, s)
	checkNodeInfo(t, s)
	// The driver has no controller service: the call reaches it and is
	// refused as the specification says.
	if _, err := s.Client().Controller.ControllerGetCapabilities(t.Context(), &csi.ControllerGetCapabilitiesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("ControllerGetCapabilities on a node-only driver: %v; want Unimplemented", err)
	}

	events, unsubscribe := s.Subscribe()
	defer unsubscribe()
	if ev := nextNetworkEvent(t, events, time.Second); ev.Kind != Started {
		t.Fatalf("first event = %v, want Started", ev)
	}
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ev := nextNetworkEvent(t, events, 30*time.Second); ev.Kind != Down || ev.Reason != ReasonExited {
		t.Errorf("after kill -9: %v %s %q; want Down %s", ev.Kind, ev.Reason, ev.Message, ReasonExited)
	}
	if ev := nextNetworkEvent(t, events, time.Minute); ev.Kind != Started || ev.Describe.GetName() != "testcsi.fedlet.io" {
		t.Fatalf("after Down: %v %s %q; want Started by testcsi.fedlet.io", ev.Kind, ev.Reason, ev.Message)
	}
	// The same client reaches the new process, configured again.
	if pid := csiPID(t, s); pid == oldPID {
		t.Errorf("the call after the restart reached the killed process %d", oldPID)
	}
	checkNodeInfo(t, s)
}
