package containerd

import (
	"context"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
)

func TestSystemReservedComesOffAllocatable(t *testing.T) {
	c, err := ParseConfig([]byte(`{"systemReserved": {"cpu": "500m", "memory": "256Mi"}}`))
	if err != nil {
		t.Fatal(err)
	}
	capacity := map[string]string{"cpu": "2", "memory": "1048576Ki", "pods": "110", "ephemeral-storage": "1000"}
	got := allocatable(capacity, c.reserved)
	want := map[string]string{"cpu": "1500m", "memory": "768Mi", "pods": "110", "ephemeral-storage": "1000"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("allocatable %s = %q, want %q", k, got[k], v)
		}
	}
	// More reserved than there is leaves nothing, not less than nothing.
	c, err = ParseConfig([]byte(`{"systemReserved": {"cpu": "4"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := allocatable(capacity, c.reserved)["cpu"]; got != "0" {
		t.Errorf("over-reserved cpu = %q, want 0", got)
	}
	if c, _ := ParseConfig(nil); len(c.reserved) != 0 || c.AllowPrivileged {
		t.Errorf("defaults reserve %v, allowPrivileged %v", c.reserved, c.AllowPrivileged)
	}
}

func TestSystemReservedRejects(t *testing.T) {
	for _, tc := range []struct{ json, mention string }{
		{`{"systemReserved": {"gpu": "1"}}`, "systemReserved.gpu"},
		{`{"systemReserved": {"memory": "lots"}}`, "systemReserved.memory"},
		{`{"systemReserved": {"cpu": "-1"}}`, "systemReserved.cpu"},
		{`{"allowPrivileged": "yes"}`, "allowPrivileged"},
	} {
		_, err := ParseConfig([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("ParseConfig(%s) = %v, want an error mentioning %s", tc.json, err, tc.mention)
		}
	}
}

func TestCapabilityNamesAsKubernetesGivesThem(t *testing.T) {
	// Only the pure options: applied to a spec with the default set.
	spec := defaultSpecForTest(t)
	for _, o := range capabilityOpts([]string{"net_admin", "CAP_SYS_TIME"}, []string{"CHOWN", "kill"}) {
		if err := o(context.Background(), nil, nil, spec); err != nil {
			t.Fatal(err)
		}
	}
	caps := strings.Join(spec.Process.Capabilities.Bounding, ",")
	for _, want := range []string{"CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_SETUID"} {
		if !strings.Contains(caps, want) {
			t.Errorf("bounding set %s lacks %s", caps, want)
		}
	}
	for _, gone := range []string{"CAP_CHOWN", "CAP_KILL"} {
		if strings.Contains(caps, gone) {
			t.Errorf("bounding set %s keeps %s", caps, gone)
		}
	}

	spec = defaultSpecForTest(t)
	for _, o := range capabilityOpts([]string{"NET_BIND_SERVICE"}, []string{"ALL"}) {
		if err := o(context.Background(), nil, nil, spec); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(spec.Process.Capabilities.Effective, ","); got != "CAP_NET_BIND_SERVICE" {
		t.Errorf("drop ALL, add NET_BIND_SERVICE: effective %s", got)
	}
}

// defaultSpecForTest is containerd's default Linux spec.
func defaultSpecForTest(t *testing.T) *oci.Spec {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), "test")
	s, err := oci.GenerateSpecWithPlatform(ctx, nil, "linux/amd64", &containers.Container{ID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
