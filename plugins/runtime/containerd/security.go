package containerd

import (
	"context"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// errPrivilegedNotAllowed is what a privileged container gets on a node
// whose config does not allow them.
var errPrivilegedNotAllowed = status.Error(codes.PermissionDenied,
	"privileged containers are not allowed on this node (the containerd runtime plugin's allowPrivileged is false)")

// checkAllowed refuses what the node's config forbids, before anything is
// created for the container.
func (s *session) checkAllowed(spec *runtimev1.ContainerSpec) error {
	if spec.GetSecurity().GetPrivileged() && !s.cfg.AllowPrivileged {
		return errPrivilegedNotAllowed
	}
	return nil
}

// securityOpts puts the container's security context into its spec, after
// the image's config (whose user it overrides). no_new_privs is set only
// when asked for, as under the kubelet.
func securityOpts(sec *runtimev1.SecurityContext) []oci.SpecOpts {
	opts := []oci.SpecOpts{withNoNewPrivileges(sec.GetNoNewPrivileges() && !sec.GetPrivileged())}
	if sec == nil {
		return opts
	}
	if sec.GetPrivileged() {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	} else {
		opts = append(opts, capabilityOpts(sec.GetCapabilitiesAdd(), sec.GetCapabilitiesDrop())...)
	}
	if sec.RunAsUser != nil {
		// The GID is the user's in the image's /etc/passwd, else 0.
		opts = append(opts, oci.WithUserID(uint32(sec.GetRunAsUser())))
	}
	if sec.RunAsUser != nil || sec.RunAsGroup != nil || len(sec.GetSupplementalGroups()) > 0 {
		opts = append(opts, withGroups(sec.RunAsGroup, sec.GetSupplementalGroups()))
	}
	if sec.GetReadOnlyRootFilesystem() {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if sec.GetRunAsNonRoot() {
		opts = append(opts, refuseRoot)
	}
	if sec.GetSeccomp() == runtimev1.Seccomp_SECCOMP_RUNTIME_DEFAULT && !sec.GetPrivileged() {
		// Last: containerd's default profile allows the system calls that
		// the capabilities set above allow.
		opts = append(opts, seccomp.WithDefaultProfile())
	}
	return opts
}

func withNoNewPrivileges(on bool) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process != nil {
			s.Process.NoNewPrivileges = on
		}
		return nil
	}
}

// withGroups sets the primary GID when asked, and the additional GIDs to
// the primary one and the supplemental groups, as the kubelet's runtimes
// do.
func withGroups(gid *int64, supplemental []int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			return nil
		}
		u := &s.Process.User
		if gid != nil {
			u.GID = uint32(*gid)
		}
		groups := []uint32{u.GID}
		for _, g := range supplemental {
			if !slices.Contains(groups, uint32(g)) {
				groups = append(groups, uint32(g))
			}
		}
		u.AdditionalGids = groups
		return nil
	}
}

// refuseRoot fails the spec when the container would run as root
// (runAsNonRoot), as the kubelet refuses to start it.
func refuseRoot(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Process != nil && s.Process.User.UID == 0 {
		return status.Error(codes.PermissionDenied, "container has runAsNonRoot and would run as root (UID 0): set runAsUser, or use an image with a non-root USER")
	}
	return nil
}

// capabilityOpts adds and drops capabilities named as Kubernetes names them
// ("CHOWN", "cap_chown" and "CAP_CHOWN" alike; "ALL" for every one), in
// the order containerd's CRI applies them: add ALL, drop ALL, then the
// named adds, then the named drops.
func capabilityOpts(add, drop []string) []oci.SpecOpts {
	if len(add) == 0 && len(drop) == 0 {
		return nil
	}
	var opts []oci.SpecOpts
	named := func(list []string) (caps []string, all bool) {
		for _, c := range list {
			c = strings.ToUpper(c)
			if c == "ALL" {
				all = true
				continue
			}
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			caps = append(caps, c)
		}
		return caps, all
	}
	addCaps, addAll := named(add)
	dropCaps, dropAll := named(drop)
	if addAll {
		opts = append(opts, oci.WithAllCurrentCapabilities)
	}
	if dropAll {
		opts = append(opts, oci.WithCapabilities(nil))
	}
	return append(opts, oci.WithAddedCapabilities(addCaps), oci.WithDroppedCapabilities(dropCaps))
}
