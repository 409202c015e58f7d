package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// TestSecurityContextIsApplied runs one container per setting and has each
// print what it observes from inside.
func TestSecurityContextIsApplied(t *testing.T) {
	ns := namespace(t)
	i64 := func(v int64) *int64 { return &v }
	yes, no := true, false
	pod := busyboxPod("secure", "", corev1.RestartPolicyNever)
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: i64(1000), RunAsGroup: i64(2000)}
	ctr := func(name, script string, sc *corev1.SecurityContext) corev1.Container {
		return corev1.Container{Name: name, Image: env.Image(), Command: []string{"sh", "-c", script}, SecurityContext: sc}
	}
	pod.Spec.Containers = []corev1.Container{
		// The pod's user and group.
		ctr("pod-user", "id -u; id -g", nil),
		// The container's user wins over the pod's; the group is the pod's.
		ctr("own-user", "id -u; id -g", &corev1.SecurityContext{RunAsUser: i64(1001)}),
		ctr("read-only", "touch /written && echo wrote || echo refused", &corev1.SecurityContext{RunAsUser: i64(0), ReadOnlyRootFilesystem: &yes}),
		ctr("no-chown", "touch /tmp/f && chown 1000 /tmp/f && echo chowned || echo refused",
			&corev1.SecurityContext{RunAsUser: i64(0), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"CHOWN"}}}),
		ctr("can-chown", "touch /tmp/f && chown 1000 /tmp/f && echo chowned || echo refused", &corev1.SecurityContext{RunAsUser: i64(0)}),
		ctr("no-escalation", "grep ^NoNewPrivs /proc/self/status", &corev1.SecurityContext{AllowPrivilegeEscalation: &no}),
		ctr("escalation", "grep ^NoNewPrivs /proc/self/status", nil),
		ctr("seccomp-default", "grep ^Seccomp: /proc/self/status",
			&corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}),
		ctr("seccomp-unconfined", "grep ^Seccomp: /proc/self/status", nil),
	}
	createPod(t, ns, pod)
	waitPod(t, ns, "secure", time.Minute, "Succeeded", phaseIs(corev1.PodSucceeded))
	// Exactly what each prints; or, where a tool fails, what its
	// complaint (on stderr, in the same log) must say.
	exact := map[string]string{
		"pod-user":      "1000\n2000\n",
		"own-user":      "1001\n2000\n",
		"can-chown":     "chowned\n",
		"no-escalation": "NoNewPrivs:\t1\n",
		"escalation":    "NoNewPrivs:\t0\n",
		// 2 is a seccomp filter, 0 none.
		"seccomp-default":    "Seccomp:\t2\n",
		"seccomp-unconfined": "Seccomp:\t0\n",
	}
	refused := map[string]string{
		"read-only": "Read-only file system",
		"no-chown":  "Operation not permitted",
	}
	for name, want := range exact {
		if out, err := kubectl(t, "-n", ns, "logs", "secure", "-c", name); err != nil || out != want {
			t.Errorf("container %s printed %q (%v), want %q", name, out, err, want)
		}
	}
	for name, why := range refused {
		out, err := kubectl(t, "-n", ns, "logs", "secure", "-c", name)
		if err != nil || !strings.Contains(out, "refused\n") || !strings.Contains(out, why) {
			t.Errorf("container %s printed %q (%v), want a refusal saying %q", name, out, err, why)
		}
	}
}

func TestForbiddenSecurityContextsWaitWithAReason(t *testing.T) {
	ns := namespace(t)
	yes := true
	privileged := busyboxPod("privileged", "true", corev1.RestartPolicyNever)
	privileged.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	rootless := busyboxPod("non-root", "true", corev1.RestartPolicyNever)
	rootless.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: &yes}
	createPod(t, ns, privileged)
	createPod(t, ns, rootless)
	for name, message := range map[string]string{
		"privileged": "privileged containers are not allowed on this node",
		"non-root":   "runAsNonRoot",
	} {
		p := waitPod(t, ns, name, time.Minute, "refused with CreateContainerConfigError", func(p *corev1.Pod) bool {
			return waitingReason(p) == "CreateContainerConfigError"
		})
		if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, message) {
			t.Errorf("%s: message %q does not say %q", name, msg, message)
		}
		// Nothing is left of the refused starts (a retry may be under way).
		waitFor(t, 30*time.Second, name+": the sandbox alone on the host", func() (bool, string) {
			h := inspectHost(t, string(p.UID))
			return h.containers == 1 && h.snapshots == 0, fmt.Sprintf("%+v", h)
		})
	}

	// A seccomp profile from the node's files is not supported yet: refused,
	// not run without it.
	localhost := busyboxPod("seccomp-localhost", "true", corev1.RestartPolicyNever)
	localhost.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{
		Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("profiles/audit.json"),
	}}
	createPod(t, ns, localhost)
	p := waitPod(t, ns, "seccomp-localhost", time.Minute, "refused with CreateContainerConfigError", func(p *corev1.Pod) bool {
		return waitingReason(p) == "CreateContainerConfigError"
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, `a Localhost seccomp profile in container "main"`) {
		t.Errorf("seccomp-localhost: message %q does not name the profile", msg)
	}
}

// hasCapability says whether a /proc/PID/status capability mask (hex) has
// the capability with that number.
func hasCapability(mask string, capability uint) bool {
	n, err := strconv.ParseUint(mask, 16, 64)
	return err == nil && n&(1<<capability) != 0
}
