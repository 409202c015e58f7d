package pod

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// securityContext merges the pod's and the container's securityContext as
// the kubelet does: a field set on the container wins over the pod's.
// Fields the runtime protocol does not carry (SELinux, AppArmor, procMount,
// sysctls, Windows options) are not honoured.
func securityContext(pod *corev1.Pod, ctr *corev1.Container) *runtimev1.SecurityContext {
	sec := &runtimev1.SecurityContext{}
	if sp := seccompProfile(pod, ctr); sp != nil && sp.Type == corev1.SeccompProfileTypeRuntimeDefault {
		sec.Seccomp = runtimev1.Seccomp_SECCOMP_RUNTIME_DEFAULT
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		sec.RunAsUser = psc.RunAsUser
		sec.RunAsGroup = psc.RunAsGroup
		sec.RunAsNonRoot = psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
		sec.SupplementalGroups = append(sec.SupplementalGroups, psc.SupplementalGroups...)
		// The kubelet adds fsGroup to every container's groups: it is how
		// they use the volumes that belong to it.
		if psc.FSGroup != nil {
			sec.SupplementalGroups = append(sec.SupplementalGroups, *psc.FSGroup)
		}
	}
	csc := ctr.SecurityContext
	if csc == nil {
		return sec
	}
	if csc.RunAsUser != nil {
		sec.RunAsUser = csc.RunAsUser
	}
	if csc.RunAsGroup != nil {
		sec.RunAsGroup = csc.RunAsGroup
	}
	if csc.RunAsNonRoot != nil {
		sec.RunAsNonRoot = *csc.RunAsNonRoot
	}
	sec.ReadOnlyRootFilesystem = csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem
	sec.Privileged = csc.Privileged != nil && *csc.Privileged
	// no_new_privs only when asked for: the kubelet's default allows
	// escalation (setuid binaries work).
	sec.NoNewPrivileges = csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation
	if caps := csc.Capabilities; caps != nil {
		for _, c := range caps.Add {
			sec.CapabilitiesAdd = append(sec.CapabilitiesAdd, string(c))
		}
		for _, c := range caps.Drop {
			sec.CapabilitiesDrop = append(sec.CapabilitiesDrop, string(c))
		}
	}
	return sec
}

// seccompProfile is the container's seccomp profile, else the pod's; nil
// when neither names one (the kubelet's default, Unconfined).
func seccompProfile(pod *corev1.Pod, ctr *corev1.Container) *corev1.SeccompProfile {
	if csc := ctr.SecurityContext; csc != nil && csc.SeccompProfile != nil {
		return csc.SeccompProfile
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		return psc.SeccompProfile
	}
	return nil
}

// startErrorReason is the waiting reason of a container whose start the
// runtime refused: a refusal of what the pod asks for (privileged on a node
// that forbids it, runAsNonRoot with a root image) is a configuration error
// of the pod, as the kubelet reports it; anything else is the runtime's.
func startErrorReason(err error) string {
	if status.Code(err) == codes.PermissionDenied {
		return "CreateContainerConfigError"
	}
	return "CreateContainerError"
}
