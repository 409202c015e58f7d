// Package ocispec builds the OCI runtime spec (a bundle's config.json) of a
// container from the runtime protocol's ContainerSpec and its image's
// configuration, for plugins that hand containers to an OCI runtime (runc,
// crun): the command as the kubelet composes it, the environment, the
// working directory, the user resolved in the image's /etc/passwd, the
// security context (read-only root, seccomp, capabilities, no new
// privileges), the memory and CPU limits, the pod's network namespace, the
// volumes and the termination message file. It starts from containerd's default
// spec (its mounts, masked paths and capabilities).
package ocispec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// Container is what the spec is built from.
type Container struct {
	// ID names the container to the OCI runtime, and its cgroup:
	// /CgroupParent/ID.
	ID string
	// CgroupParent groups the plugin's containers' cgroups; "fedlet" when
	// empty.
	CgroupParent string
	Spec         *runtimev1.ContainerSpec
	Image        v1.Config
	// RootFS is the container's root filesystem, writable unless the
	// security context says otherwise.
	RootFS string
	// Netns is the pod's network namespace; empty for the host's.
	Netns string
	// TerminationLog is a host file for the container's termination
	// message: Build makes it empty and mounts it at the spec's
	// termination_message_path. Unused when the spec names no path.
	TerminationLog string
}

// MaxTerminationMessage is how much of a termination message the runtime
// protocol carries.
const MaxTerminationMessage = 4096

// Build returns the container's spec. A user that is root when the
// security context forbids it fails with PermissionDenied; a user the
// image does not know by name, with InvalidArgument.
func Build(ctx context.Context, c Container) (*specs.Spec, error) {
	spec := c.Spec
	sec := spec.GetSecurity()
	if sec == nil {
		sec = &runtimev1.SecurityContext{}
	}
	u, err := resolveUser(c.Image.User, sec, c.RootFS)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "user of %s: %v", c.ID, err)
	}
	if sec.GetRunAsNonRoot() && u.Uid == 0 {
		return nil, status.Errorf(codes.PermissionDenied, "container %s would run as root, and must not", c.ID)
	}
	env := c.Image.Env
	for _, kv := range spec.GetEnv() {
		env = append(env, kv.GetKey()+"="+kv.GetValue())
	}
	netns := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: c.Netns}
	opts := []oci.SpecOpts{oci.WithRootFSPath(c.RootFS), oci.WithProcessArgs(Args(spec, c.Image)...), oci.WithEnv(env),
		oci.WithUIDGID(uint32(u.Uid), uint32(u.Gid)), oci.WithLinuxNamespace(netns)}
	if cwd := firstOf(spec.GetWorkingDir(), c.Image.WorkingDir); cwd != "" {
		opts = append(opts, oci.WithProcessCwd(cwd))
	}
	if c.Netns == "" {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	}
	if sec.GetPrivileged() {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed)
	} else if sec.GetSeccomp() == runtimev1.Seccomp_SECCOMP_RUNTIME_DEFAULT {
		opts = append(opts, seccomp.WithDefaultProfile())
	}
	if sec.GetReadOnlyRootFilesystem() {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if sec.GetNoNewPrivileges() {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	opts = append(opts, capabilities(sec)...)
	res := spec.GetResources()
	if m := res.GetMemoryLimitBytes(); m > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(m)))
	}
	if res.GetCpuShares() > 0 {
		opts = append(opts, oci.WithCPUShares(uint64(res.GetCpuShares())))
	}
	if res.GetCpuQuota() > 0 {
		opts = append(opts, oci.WithCPUCFS(res.GetCpuQuota(), uint64(res.GetCpuPeriod())))
	}
	mounts, err := c.mounts()
	if err != nil {
		return nil, err
	}
	parent := firstOf(c.CgroupParent, "fedlet")
	s, err := oci.GenerateSpec(namespaces.WithNamespace(ctx, parent), nil, &containers.Container{ID: c.ID}, append(opts, oci.WithMounts(mounts))...)
	if err != nil {
		return nil, fmt.Errorf("make the OCI spec of %s: %w", c.ID, err)
	}
	for _, g := range sec.GetSupplementalGroups() {
		s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, uint32(g))
	}
	return s, nil
}

// Args is the container's command line as the kubelet composes it: the
// spec's command replaces the image's entrypoint, and its args the image's
// command.
func Args(spec *runtimev1.ContainerSpec, img v1.Config) []string {
	switch {
	case len(spec.GetCommand()) > 0:
		return append(append([]string{}, spec.GetCommand()...), spec.GetArgs()...)
	case len(spec.GetArgs()) > 0:
		return append(append([]string{}, img.Entrypoint...), spec.GetArgs()...)
	}
	return append(append([]string{}, img.Entrypoint...), img.Cmd...)
}

// resolveUser finds the container's UID and GIDs: the security context's
// run_as_user and run_as_group, else the image's user, looked up in the
// image's /etc/passwd and /etc/group; a UID the image does not know has
// GID 0.
func resolveUser(imageUser string, sec *runtimev1.SecurityContext, rootfs string) (*user.ExecUser, error) {
	who := imageUser
	if sec.RunAsUser != nil {
		who = strconv.FormatInt(sec.GetRunAsUser(), 10)
	}
	if sec.RunAsGroup != nil {
		who = strings.SplitN(who, ":", 2)[0] + ":" + strconv.FormatInt(sec.GetRunAsGroup(), 10)
	}
	return user.GetExecUserPath(who, &user.ExecUser{}, filepath.Join(rootfs, "etc/passwd"), filepath.Join(rootfs, "etc/group"))
}

// mounts are the pod's volumes and the termination message file.
func (c Container) mounts() ([]specs.Mount, error) {
	var mounts []specs.Mount
	for _, m := range c.Spec.GetMounts() {
		mode := "rw"
		if m.GetReadOnly() {
			mode = "ro"
		}
		mounts = append(mounts, specs.Mount{Destination: m.GetContainerPath(), Source: m.GetHostPath(), Type: "bind", Options: []string{"rbind", mode}})
	}
	if p := c.Spec.GetTerminationMessagePath(); p != "" {
		if err := os.WriteFile(c.TerminationLog, nil, 0o666); err != nil {
			return nil, fmt.Errorf("make the termination message file of %s: %w", c.ID, err)
		}
		mounts = append(mounts, specs.Mount{Destination: p, Source: c.TerminationLog, Type: "bind", Options: []string{"bind", "rw"}})
	}
	return mounts, nil
}

// TerminationMessage reads what the container wrote to its termination
// message file, at most MaxTerminationMessage bytes; empty when none.
func TerminationMessage(path string) string {
	msg, _ := os.ReadFile(path)
	return string(msg[:min(len(msg), MaxTerminationMessage)])
}

// OOMKilled says whether the kernel killed a process of the container for
// exceeding its memory limit, from the OOM kill count of its cgroup (v1
// or v2; the spec's Linux.CgroupsPath), which stays until the OCI runtime
// deletes the container.
func OOMKilled(cgroupsPath string) bool {
	cg := cgroupsPath
	for _, f := range []string{"/sys/fs/cgroup/memory" + cg + "/memory.oom_control", "/sys/fs/cgroup" + cg + "/memory.events"} {
		data, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(data), "\n") {
			if n, ok := strings.CutPrefix(line, "oom_kill "); ok && n != "0" {
				return true
			}
		}
	}
	return false
}

// capabilities adds and drops capabilities as the protocol says: drops
// after adds, except that dropping ALL empties the set before the adds.
func capabilities(sec *runtimev1.SecurityContext) []oci.SpecOpts {
	var opts []oci.SpecOpts
	var drops []string
	for _, n := range sec.GetCapabilitiesDrop() {
		if n == "ALL" {
			opts = append(opts, oci.WithCapabilities(nil))
		} else {
			drops = append(drops, capName(n))
		}
	}
	for _, n := range sec.GetCapabilitiesAdd() {
		if n == "ALL" {
			opts = append(opts, oci.WithAllKnownCapabilities)
		} else {
			opts = append(opts, oci.WithAddedCapabilities([]string{capName(n)}))
		}
	}
	return append(opts, oci.WithDroppedCapabilities(drops))
}

// capName turns a Kubernetes capability name (NET_ADMIN) into the
// kernel's (CAP_NET_ADMIN).
func capName(n string) string { return "CAP_" + strings.TrimPrefix(strings.ToUpper(n), "CAP_") }

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
