package pod

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/fedlet/fedlet/core/volume"
	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// unsupported names the features of the pod this agent cannot honour yet,
// so the pod waits with that reason instead of running without them.
// Host ports need a network plugin (its portmap).
func unsupported(pod *corev1.Pod, hasNetwork, makesVolumes bool) string {
	var missing []string
	for _, ctr := range pod.Spec.InitContainers {
		if ctr.RestartPolicy != nil && *ctr.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			missing = append(missing, fmt.Sprintf("sidecar init container %q (restartPolicy Always)", ctr.Name))
		}
	}
	for _, v := range pod.Spec.Volumes {
		if (!makesVolumes || !volume.Supported(v)) && !isServiceAccountVolume(v) {
			missing = append(missing, fmt.Sprintf("volume %q", v.Name))
		}
	}
	for _, ctr := range allContainers(pod) {
		for _, e := range ctr.Env {
			if e.ValueFrom != nil && e.ValueFrom.FileKeyRef != nil {
				missing = append(missing, fmt.Sprintf("env %s from a file in container %q", e.Name, ctr.Name))
			}
		}
		for _, p := range ctr.Ports {
			if p.HostPort != 0 && !pod.Spec.HostNetwork && !hasNetwork {
				missing = append(missing, fmt.Sprintf("hostPort %d in container %q", p.HostPort, ctr.Name))
			}
		}
		if sp := seccompProfile(pod, &ctr); sp != nil && sp.Type == corev1.SeccompProfileTypeLocalhost {
			missing = append(missing, fmt.Sprintf("a Localhost seccomp profile in container %q", ctr.Name))
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "not supported by this node yet: " + strings.Join(missing, ", ")
}

// isServiceAccountVolume recognises the projected token volume the API
// server adds to every pod. A node that makes no volumes does not mount
// it: such pods run without API credentials rather than not at all.
func isServiceAccountVolume(v corev1.Volume) bool {
	return v.Projected != nil && strings.HasPrefix(v.Name, "kube-api-access-")
}

// containerSpec translates a container of the pod into the runtime protocol,
// with its resolved environment (resolveEnv), expanding $(VAR) references
// in command and args as the kubelet does.
func containerSpec(pod *corev1.Pod, ctr *corev1.Container, env []*runtimev1.KeyValue) (*runtimev1.ContainerSpec, error) {
	values := make(map[string]string, len(env))
	for _, kv := range env {
		values[kv.Key] = kv.Value
	}
	spec := &runtimev1.ContainerSpec{
		Name:                   ctr.Name,
		Image:                  ctr.Image,
		WorkingDir:             ctr.WorkingDir,
		Env:                    env,
		Tty:                    ctr.TTY,
		Stdin:                  ctr.Stdin,
		StdinOnce:              ctr.StdinOnce,
		TerminationMessagePath: ctr.TerminationMessagePath,
	}
	spec.Resources, spec.Security = containerResources(ctr), securityContext(pod, ctr)
	for _, a := range ctr.Command {
		spec.Command = append(spec.Command, expand(a, values))
	}
	for _, a := range ctr.Args {
		spec.Args = append(spec.Args, expand(a, values))
	}
	return spec, nil
}

// expand replaces $(NAME) by the variable's value when it is defined, leaves
// unknown references as they are, and turns $$ into $.
func expand(s string, values map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := values[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
