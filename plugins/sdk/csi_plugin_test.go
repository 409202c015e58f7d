package sdk_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	registerv1 "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/fedlet/fedlet/plugins/sdk"
)

type describedCSI struct {
	csi.UnimplementedIdentityServer
}

func (describedCSI) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: "d.csi.example.com", VendorVersion: "1.2.3"}, nil
}

func (describedCSI) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	service := func(t csi.PluginCapability_Service_Type) *csi.PluginCapability {
		return &csi.PluginCapability{Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: t}}}
	}
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{
		service(csi.PluginCapability_Service_CONTROLLER_SERVICE),
		{Type: &csi.PluginCapability_VolumeExpansion_{VolumeExpansion: &csi.PluginCapability_VolumeExpansion{Type: csi.PluginCapability_VolumeExpansion_ONLINE}}},
		service(csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS),
	}}, nil
}

// A CSI driver is described in the base protocol's terms by its Identity:
// name, vendor version, and the types of the services it declares.
func TestDescribeCSI(t *testing.T) {
	d, err := sdk.DescribeCSI(t.Context(), describedCSI{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CONTROLLER_SERVICE", "VOLUME_ACCESSIBILITY_CONSTRAINTS"}
	if d.Name != "d.csi.example.com" || d.Version != "1.2.3" || !slices.Equal(d.Capabilities, want) {
		t.Errorf("DescribeCSI = %+v; want d.csi.example.com 1.2.3 %v", d, want)
	}
}

func TestUnixEndpointPath(t *testing.T) {
	for endpoint, want := range map[string]string{
		"unix:///run/csi/csi.sock": "/run/csi/csi.sock",
		"/run/csi/csi.sock":        "/run/csi/csi.sock",
		"tcp://127.0.0.1:10000":    "",
		"unix://relative.sock":     "",
		"relative.sock":            "",
	} {
		got, err := sdk.UnixEndpointPath(endpoint)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("UnixEndpointPath(%q) = %q, %v; want %q", endpoint, got, err, want)
		}
	}
}

// A driver announces itself to a kubelet on <dir>/<name>-reg.sock: a CSI
// plugin, its name, endpoint and versions; the socket goes when it stops.
func TestServeKubeletRegistration(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() {
		served <- sdk.ServeKubeletRegistration(ctx, dir, "d.csi.example.com", "unix:///run/d/csi.sock")
	}()

	socket := filepath.Join(dir, "d.csi.example.com-reg.sock")
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := registerv1.NewRegistrationClient(conn)
	info, err := client.GetInfo(ctx, &registerv1.InfoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if info.GetType() != registerv1.CSIPlugin || info.GetName() != "d.csi.example.com" || info.GetEndpoint() != "/run/d/csi.sock" || !slices.Equal(info.GetSupportedVersions(), []string{"1.0.0"}) {
		t.Errorf("GetInfo = %v; want a CSIPlugin d.csi.example.com at /run/d/csi.sock, version 1.0.0", info)
	}
	if _, err := client.NotifyRegistrationStatus(ctx, &registerv1.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Errorf("NotifyRegistrationStatus: %v", err)
	}

	cancel()
	if err := <-served; err != nil {
		t.Errorf("ServeKubeletRegistration after its context ended: %v", err)
	}
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the registration socket after the end: %v; want it removed", err)
	}
}

// stagingNode records the NodeStageVolume calls that reach it.
type stagingNode struct {
	csi.UnimplementedNodeServer
	staged chan *csi.NodeStageVolumeRequest
}

func (n *stagingNode) NodeStageVolume(_ context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	n.staged <- req
	return &csi.NodeStageVolumeResponse{}, nil
}

// A CSI call without a field the specification requires is refused by the
// SDK with InvalidArgument, naming the field, before the driver sees it; a
// whole one reaches the driver.
func TestServeCSIEndpointAppliesTheRequestRules(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "csi.sock")
	node := &stagingNode{staged: make(chan *csi.NodeStageVolumeRequest, 2)}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- sdk.ServeCSIEndpoint(ctx, "unix://"+socket, describedCSI{}, nil, node) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("ServeCSIEndpoint: %v", err)
		}
	})
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := csi.NewNodeClient(conn)

	capability := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}}
	_, err = client.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "v", VolumeCapability: capability}, grpc.WaitForReady(true))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "staging_target_path") {
		t.Errorf("NodeStageVolume without staging_target_path: %v, want InvalidArgument naming the field", err)
	}
	whole := &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: "/stage", VolumeCapability: capability}
	if _, err := client.NodeStageVolume(ctx, whole); err != nil {
		t.Fatalf("a whole NodeStageVolume: %v", err)
	}
	if got := <-node.staged; got.GetStagingTargetPath() != "/stage" || len(node.staged) != 0 {
		t.Errorf("the driver saw %v and %d more calls; want only the whole one", got, len(node.staged))
	}
}
