package sdk_test

import (
	"context"
	"slices"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

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
