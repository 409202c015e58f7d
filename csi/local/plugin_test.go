package local_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/fedlet/fedlet/csi/local"
	"github.com/fedlet/fedlet/plugins/pluginhost"
)

// childDriver returns the PID of the fedlet-csi-local process this test
// process started, which the plugin host launched.
func childDriver(t *testing.T) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		// stat: pid (comm) state ppid ...
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if exe == driverBinary && len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			return pid
		}
	}
	t.Fatal("no fedlet-csi-local process started by this test")
	return 0
}

// Under the agent the driver is a storage plugin: launched by the plugin
// host over go-plugin, described from its Identity service, configured
// through the base protocol with its state directory and the node it
// serves, and after kill -9 restarted and configured again, with its
// volumes found on disk.
func TestUnderThePluginHost(t *testing.T) {
	dir := t.TempDir()
	host, err := pluginhost.New(pluginhost.Config{Dirs: []string{filepath.Dir(driverBinary)}}, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := host.StartStorage(ctx, pluginhost.PluginSpec{
		Name:   "local",
		Plugin: filepath.Base(driverBinary),
		Config: []byte(`{"stateDir":"` + filepath.Join(dir, "state") + `"}`),
		Nodes:  []string{"node-x"},
	})
	if err != nil {
		cancel()
		t.Fatalf("StartStorage: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.Done():
		case <-time.After(time.Minute):
			t.Error("the plugin did not stop within a minute")
		}
	})

	d := s.Describe()
	if d.GetName() != local.DriverName || d.GetFamily() != "storage" || !s.HasCapability("CONTROLLER_SERVICE") || !s.HasCapability("VOLUME_ACCESSIBILITY_CONSTRAINTS") {
		t.Errorf("Describe() = %v; want %s of family storage with CONTROLLER_SERVICE and VOLUME_ACCESSIBILITY_CONSTRAINTS", d, local.DriverName)
	}
	if len(d.GetConfig().GetFields()) == 0 {
		t.Errorf("Describe() lists no config fields: %v", d.GetConfig())
	}
	bad := pluginhost.PluginSpec{Name: "local", Plugin: filepath.Base(driverBinary), Config: []byte(`{"stateDir":"relative"}`), Nodes: []string{"node-x"}}
	if err := host.CheckConfig(t.Context(), pluginhost.StorageFamily, bad); err == nil || !strings.Contains(err.Error(), "stateDir") {
		t.Errorf("CheckConfig of a relative stateDir: %v; want a violation naming stateDir", err)
	}
	c := s.Client()
	vol, err := c.Controller.CreateVolume(t.Context(), &csi.CreateVolumeRequest{
		Name:               "kept",
		CapacityRange:      &csi.CapacityRange{RequiredBytes: 16 << 20},
		VolumeCapabilities: []*csi.VolumeCapability{blockCapability()},
	})
	if err != nil {
		t.Fatalf("CreateVolume through the host's client: %v", err)
	}

	events, unsubscribe := s.Subscribe()
	defer unsubscribe()
	<-events // Started
	if err := syscall.Kill(childDriver(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		if ev.Kind == pluginhost.Started {
			break
		}
	}
	info, err := c.Node.NodeGetInfo(t.Context(), &csi.NodeGetInfoRequest{})
	if err != nil || info.GetNodeId() != "node-x" || info.GetAccessibleTopology().GetSegments()[local.TopologyKey] != "node-x" {
		t.Errorf("NodeGetInfo after the restart = %v, %v; want node-x, configured again", info, err)
	}
	list, err := c.Controller.ListVolumes(t.Context(), &csi.ListVolumesRequest{})
	if err != nil || len(list.GetEntries()) != 1 || list.GetEntries()[0].GetVolume().GetVolumeId() != vol.GetVolume().GetVolumeId() {
		t.Errorf("ListVolumes after the restart = %v, %v; want the volume made before it", list, err)
	}
	if _, err := c.Controller.DeleteVolume(t.Context(), &csi.DeleteVolumeRequest{VolumeId: vol.GetVolume().GetVolumeId()}); err != nil {
		t.Errorf("DeleteVolume: %v", err)
	}
}
