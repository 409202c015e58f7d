package pod

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

func TestSecurityContextContainerWins(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	yes, no := true, false
	pod := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{
		RunAsUser: i64(1000), RunAsGroup: i64(2000), RunAsNonRoot: &yes, SupplementalGroups: []int64{5, 6},
	}}}

	plain := securityContext(pod, &corev1.Container{})
	if plain.GetRunAsUser() != 1000 || plain.GetRunAsGroup() != 2000 || !plain.RunAsNonRoot || !slices.Equal(plain.SupplementalGroups, []int64{5, 6}) {
		t.Errorf("pod-level only: %v", plain)
	}
	if plain.NoNewPrivileges || plain.Privileged || plain.ReadOnlyRootFilesystem {
		t.Errorf("defaults changed: %v", plain)
	}

	ctr := &corev1.Container{SecurityContext: &corev1.SecurityContext{
		RunAsUser: i64(0), RunAsNonRoot: &no,
		ReadOnlyRootFilesystem:   &yes,
		AllowPrivilegeEscalation: &no,
		Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}},
	}}
	sec := securityContext(pod, ctr)
	if sec.RunAsUser == nil || sec.GetRunAsUser() != 0 || sec.GetRunAsGroup() != 2000 || sec.RunAsNonRoot {
		t.Errorf("container fields do not win: %v", sec)
	}
	if !sec.ReadOnlyRootFilesystem || !sec.NoNewPrivileges || !slices.Equal(sec.CapabilitiesAdd, []string{"NET_ADMIN"}) || !slices.Equal(sec.CapabilitiesDrop, []string{"ALL"}) {
		t.Errorf("container fields lost: %v", sec)
	}

	none := securityContext(&corev1.Pod{}, &corev1.Container{SecurityContext: &corev1.SecurityContext{Privileged: &yes, AllowPrivilegeEscalation: &yes}})
	if none.RunAsUser != nil || none.RunAsGroup != nil || !none.Privileged || none.NoNewPrivileges {
		t.Errorf("privileged container: %v", none)
	}
}

// The container's seccomp profile wins over the pod's; RuntimeDefault is
// carried, anything else is no filter.
func TestSeccompContainerWins(t *testing.T) {
	profile := func(t corev1.SeccompProfileType) *corev1.SeccompProfile { return &corev1.SeccompProfile{Type: t} }
	podDefault := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{SeccompProfile: profile(corev1.SeccompProfileTypeRuntimeDefault)}}}
	unconfined := &corev1.Container{SecurityContext: &corev1.SecurityContext{SeccompProfile: profile(corev1.SeccompProfileTypeUnconfined)}}
	runtimeDefault := &corev1.Container{SecurityContext: &corev1.SecurityContext{SeccompProfile: profile(corev1.SeccompProfileTypeRuntimeDefault)}}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		ctr  *corev1.Container
		want runtimev1.Seccomp
	}{
		{"none named", &corev1.Pod{}, &corev1.Container{}, runtimev1.Seccomp_SECCOMP_UNCONFINED},
		{"the pod's", podDefault, &corev1.Container{}, runtimev1.Seccomp_SECCOMP_RUNTIME_DEFAULT},
		{"the container's over the pod's", podDefault, unconfined, runtimev1.Seccomp_SECCOMP_UNCONFINED},
		{"the container's alone", &corev1.Pod{}, runtimeDefault, runtimev1.Seccomp_SECCOMP_RUNTIME_DEFAULT},
	} {
		if got := securityContext(tc.pod, tc.ctr).GetSeccomp(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestStartErrorReason(t *testing.T) {
	if got := startErrorReason(status.Error(codes.PermissionDenied, "privileged containers are not allowed")); got != "CreateContainerConfigError" {
		t.Errorf("refusal: %s", got)
	}
	if got := startErrorReason(status.Error(codes.Internal, "runc failed")); got != "CreateContainerError" {
		t.Errorf("failure: %s", got)
	}
}
